"""Names and paths read from data files (label names, classes.txt, txt lists) must stay inside
the folder they belong to: a crafted archive or list must not write or read elsewhere."""
from __future__ import annotations

import os
from pathlib import Path

from trainlib.errors import DataError


def safe_name(name: str, where: str) -> str:
    """`name` as one folder or file name: not empty, no path separator, not '.' or '..', no NUL."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name or name != name.strip():
        raise DataError(f"{where}: name {name!r} cannot be a folder name (it must be one plain path "
                        f"component: no '/', '\\\\', '..', NUL or surrounding spaces)")
    return name


def unique_names(names: list[str], where: str) -> list[str]:
    """Each name safe, and no two alike (two classes must not share one folder)."""
    seen: set[str] = set()
    for name in names:
        if safe_name(name, where) in seen:
            raise DataError(f"{where}: name {name!r} appears twice; class names must be unique")
        seen.add(name)
    return names


def inside(root: Path, relative: str, where: str) -> Path:
    """root / relative, which must not leave root (no absolute path, no '..' climbing out)."""
    joined = Path(os.path.normpath(root / Path(relative).expanduser()))
    base = Path(os.path.normpath(root))
    if Path(relative).expanduser().is_absolute() or (joined != base and base not in joined.parents):
        raise DataError(f"{where}: path {relative!r} points outside {base}; "
                        f"paths in a list are relative to the list's folder and stay inside it")
    return joined
