"""The pieces of a self-contained HTML report: the page, sections, a sortable table, embedded
images (base64 data URIs) and text blocks. Inline CSS and JS only: the file opens from disk with
no server and no network."""
from __future__ import annotations

import base64
import io
import math
from html import escape
from typing import Any, Callable, Sequence

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1500px; padding: 0 16px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th:after { content: " \\2195"; color: #999; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #eef8ee; }
img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f7f7f7; padding: 10px; overflow-x: auto; font-size: 12px; }
.caution { background: #fff4e0; border-left: 4px solid #f0a020; padding: 6px 10px; }
.note { color: #666; }
"""

# Sort a table.sortable by the clicked column: numbers (a cell's data-sort) numerically, else as text;
# a second click on the same column reverses the order.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var up = th.dataset.order !== "asc";
      table.querySelectorAll("th").forEach(function (h) { delete h.dataset.order; });
      th.dataset.order = up ? "asc" : "desc";
      function key(row) {
        var cell = row.cells[column], n = parseFloat(cell.dataset.sort);
        return isNaN(n) ? cell.textContent.trim().toLowerCase() : n;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), order = x < y ? -1 : x > y ? 1 : 0;
        if (typeof x !== typeof y) order = typeof x === "number" ? -1 : 1;
        return up ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def page(title: str, sections: Sequence[str]) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n<h1>{escape(title)}</h1>\n" + "\n".join(sections) +
            f"\n<script>{SCRIPT}</script>\n</body></html>\n")


def section(title: str, anchor: str, *parts: str) -> str:
    return f"<section id=\"{anchor}\"><h2>{escape(title)}</h2>\n" + "\n".join(parts) + "</section>"


def paragraph(text: str, kind: str = "") -> str:
    return f"<p class=\"{kind}\">{escape(text)}</p>" if kind else f"<p>{escape(text)}</p>"


def preformatted(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def image(png: bytes, alt: str, element_id: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    ident = f" id=\"{element_id}\"" if element_id else ""
    return f"<img{ident} alt=\"{escape(alt)}\" src=\"data:image/png;base64,{data}\">"


def figure_png(draw: Callable[[io.BytesIO], None]) -> bytes:
    """The PNG bytes a matplotlib drawing function writes to the file object it is given."""
    buffer = io.BytesIO()
    draw(buffer)
    return buffer.getvalue()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], element_id: str, sortable: bool = True,
          highlight: int | None = None) -> str:
    """Numbers are right-aligned and sort as numbers; row `highlight` (an index) is marked."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    marks = ['<tr class="best">' if i == highlight else "<tr>" for i in range(len(rows))]
    body = "".join(mark + "".join(cell(v) for v in row) + "</tr>" for mark, row in zip(marks, rows))
    kind = " class=\"sortable\"" if sortable else ""
    return f"<table id=\"{element_id}\"{kind}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def cell(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"<td>{escape('' if value is None else str(value))}</td>"
    text = f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else str(value)
    return f"<td class=\"num\" data-sort=\"{value if math.isfinite(value) else ''}\">{escape(text)}</td>"
