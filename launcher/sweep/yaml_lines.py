"""Read YAML with safe_load semantics and remember the line of every key.

Errors in a sweep file then read like a compiler's: ``optim.yaml:7: space.optimizer.lr: ...``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainlib.config import read_text
from trainlib.errors import ConfigError

KeyPath = tuple[Any, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-3` as a float (YAML 1.1 wants `1.0e-3`; users write both)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


@dataclass
class Located:
    """A YAML document plus the line of each key path in it."""

    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    prefix: KeyPath = ()  # shown before key paths (a section of a larger document)

    def line_of(self, keys: KeyPath) -> int | None:
        """The line of `keys`, or of its closest ancestor that has one."""
        keys = tuple(keys)
        while keys not in self.lines:
            if not keys:
                return None
            keys = keys[:-1]
        return self.lines[keys]

    def error(self, keys: KeyPath, message: str) -> ConfigError:
        line = self.line_of(keys)
        where = f"{self.path}:{line}" if line else str(self.path)
        dotted = dotted_path(self.prefix + tuple(keys))
        return ConfigError(f"{where}: {dotted}: {message}" if dotted else f"{where}: {message}")


def dotted_path(keys: KeyPath) -> str:
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def load_located(path: str | Path, what: str = "sweep file") -> Located:
    path = Path(path)
    loader = _Loader(read_text(path, what))
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: malformed YAML: {problem}") from None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _collect(node, (), lines)
    return Located(path, data, lines)


def _collect(node: yaml.Node, prefix: KeyPath, lines: dict[KeyPath, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = prefix + (key_node.value,)
            lines[key] = key_node.start_mark.line + 1
            _collect(value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[prefix + (i,)] = item.start_mark.line + 1
            _collect(item, prefix + (i,), lines)
