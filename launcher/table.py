"""Plain-text tables (`launch runs`, `launch compare`, `launch sweep`) and the value formats."""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

MISSING = "-"
# Python writes a float's exponent with its sign ("1e-06", "1e+20"): a run id such as "9e004775" is no number.
LONG_DECIMAL = re.compile(r"[-+]?\d*\.\d{5,}(e[-+]\d+)?|[-+]?\d(\.\d{4,})?e[-+]\d+", re.IGNORECASE)


def cell(value: Any) -> str:
    """A value for reading: metrics to 4 decimals, long decimal params (MLflow keeps them as
    strings, e.g. a sampled lr) to 3 significant digits; everything else as it is."""
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    text = str(value)
    if isinstance(value, str) and LONG_DECIMAL.fullmatch(text):
        return f"{float(text):.3g}"
    return text


def render(header: Sequence[str], rows: Sequence[Sequence[Any]], fmt: Callable[[Any], str] = cell) -> str:
    """Left-aligned columns separated by two spaces, a rule under the header; `fmt` writes a cell."""
    cells = [[str(c) for c in header], *[[fmt(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
