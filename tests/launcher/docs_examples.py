"""What the docs test reads in README.md and docs/*.md: their links, and the examples whose
output they show.

An example is a fenced block right after the comment `<!-- docs-test: run [slow] [tol=R] -->`:
lines starting with `$ ` are commands (a line ending in `\\` continues on the next one), the
lines after a command are what it prints (stdout and stderr together). The commands run with
bash, one block in one fresh folder (the repository's `search_spaces/` copied in), in order;
`RUN_ID` in a command stands for the last `run id: ...` an earlier command of the block printed.

Shown and printed lines are compared by `matches`: a line `...` stands for any number of lines,
`...` inside a line for any text, whitespace runs are equal, blank lines are left out, every number within a relative
tolerance R (default 0.05); run ids, time stamps, durations, throughputs and the example's
folder are masked first, since they differ on every run.
"""
from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!-- docs-test: run(?P<options>[^>]*)-->\n```[a-z]*\n(?P<body>.*?)\n```", re.S)
NUMBER = r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?"
MASKS = [
    (re.compile(r"\b\d{8}-\d{6}(?:-[0-9a-f]{8})?\b"), "<STAMP>"),   # run-folder time stamp (and id prefix)
    (re.compile(r"\b[0-9a-f]{32}\b"), "<RUN_ID>"),
    (re.compile(r"\b(?:\d+m)?\d+(?:\.\d+)?s\b"), "<DURATION>"),
    (re.compile(rf"{NUMBER} img/s"), "<N> img/s"),
]


# --- links -----------------------------------------------------------------------------------

def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {anchor(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def relative_links(path: Path) -> list[str]:
    """The targets of the file's Markdown links and images that are not URLs."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"[a-z]+:", t)]


def broken_links(path: Path) -> list[str]:
    broken = []
    for link in relative_links(path):
        file_part, _, fragment = link.partition("#")
        target = (path.parent / file_part).resolve() if file_part else path
        if not target.exists():
            broken.append(f"{link}: no file {target}")
        elif fragment and fragment not in anchors(target):
            broken.append(f"{link}: no heading with anchor #{fragment} in {target.name}")
    return broken


# --- examples --------------------------------------------------------------------------------

@dataclass
class Example:
    source: str            # file:line
    slow: bool
    tolerance: float
    steps: list[tuple[str, list[str]]]  # (command, the lines shown after it)

    @property
    def name(self) -> str:
        return f"{self.source} {self.steps[0][0][:40]}"


def examples(path: Path) -> list[Example]:
    text = path.read_text()
    found = []
    for m in MARKER.finditer(text):
        options = m.group("options").split()
        tolerance = next((float(o.split("=", 1)[1]) for o in options if o.startswith("tol=")), 0.05)
        line = text[:m.start()].count("\n") + 1
        found.append(Example(f"{path.relative_to(ROOT)}:{line}", "slow" in options, tolerance,
                             _steps(m.group("body").splitlines())))
    return found


def _steps(lines: list[str]) -> list[tuple[str, list[str]]]:
    steps: list[tuple[str, list[str]]] = []
    continued = False
    for line in lines:
        if continued:
            command, shown = steps[-1]
            steps[-1] = (command + "\n" + line, shown)
        elif line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
        continued = line.endswith("\\") and not steps[-1][1]
    return steps


def run(example: Example, folder: Path, env: dict[str, str], timeout: float = 600) -> list[tuple[str, list[str], str]]:
    """Each step's command, shown lines and printed text (masked), run in `folder`."""
    shutil.copytree(ROOT / "search_spaces", folder / "search_spaces")
    results, run_id = [], "RUN_ID"
    for command, shown in example.steps:
        done = subprocess.run(["bash", "-c", command.replace("RUN_ID", run_id)], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=timeout)
        printed = (done.stdout + done.stderr).replace(f"{folder.resolve()}/", "").replace(f"{folder}/", "")
        run_id = ([run_id] + re.findall(r"run id: +([0-9a-f]{32})", printed))[-1]
        results.append((command, shown, printed))
    return results


def mask(line: str) -> str:
    for pattern, placeholder in MASKS:
        line = pattern.sub(placeholder, line)
    return line


def matches(shown: list[str], printed: list[str], tolerance: float) -> bool:
    """Whether the printed lines are the shown ones (see the module's docstring)."""
    shown = [mask(s) for s in shown if s.strip()]
    printed = [mask(p) for p in printed if p.strip()]
    return _match(shown, 0, printed, 0, tolerance)


def _match(shown: list[str], i: int, printed: list[str], j: int, tolerance: float) -> bool:
    if i == len(shown):
        return j == len(printed)
    if shown[i].strip() == "...":
        return any(_match(shown, i + 1, printed, k, tolerance) for k in range(j, len(printed) + 1))
    return j < len(printed) and line_matches(shown[i], printed[j], tolerance) and \
        _match(shown, i + 1, printed, j + 1, tolerance)


def line_matches(shown: str, printed: str, tolerance: float) -> bool:
    pattern, numbers = _line_pattern(shown.strip())
    m = re.fullmatch(pattern, printed.strip())
    return m is not None and all(_close(a, b, tolerance) for a, b in zip(numbers, m.groups()))


def _line_pattern(shown: str) -> tuple[str, list[str]]:
    parts, numbers = [], []
    for piece in re.split(rf"(\.\.\.|\s+|{NUMBER})", shown):
        if piece == "...":
            parts.append(".*?")
        elif piece and piece.isspace():
            parts.append(r"\s+")
        elif piece and re.fullmatch(NUMBER, piece):
            parts.append(f"({NUMBER})")
            numbers.append(piece)
        else:
            parts.append(re.escape(piece))
    return "".join(parts), numbers


def _close(shown: str, printed: str, tolerance: float) -> bool:
    a, b = (float(x.replace(",", "")) for x in (shown, printed))
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=1e-12)
