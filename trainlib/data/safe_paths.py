"""Names read from data files (an archive's label names, classes.txt) become folder names: each
must be one plain path component, so a crafted archive cannot write elsewhere. (A txt list is the
user's own input and writes nothing: its paths are looked up, see trainlib.data.txtlist.)"""
from __future__ import annotations

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
