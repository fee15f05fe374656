"""The one YAML reader: `--config` files, sweep files and `-s key=value` values.

Safe loading (no Python tags), YAML 1.2 floats (`1e-3` is a number, not text), duplicate
keys refused naming both lines, and the line of every key kept, so errors read like a
compiler's: ``optim.yaml:7: space.optimizer.lr: ...``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainlib.errors import ConfigError

KeyPath = tuple[Any, ...]
# Values a document may hold once its aliases are expanded: a config or sweep file holds hundreds;
# a 271-byte "billion laughs" alias bomb expands to 10**9 (minutes and gigabytes to build).
MAX_VALUES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats; PyYAML (YAML 1.1) wants `1.0e-3` and reads `1e-3` as text."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def dotted(keys: KeyPath) -> str:
    """("space", "optimizer.lr", 0) -> "space.optimizer.lr[0]"."""
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


@dataclass
class YamlDocument:
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
        name = dotted(self.prefix + tuple(keys))
        return ConfigError(f"{where}: {name}: {message}" if name else f"{where}: {message}",
                           key=self.prefix + tuple(keys), located=True)

    def section(self, key: str) -> YamlDocument:
        """The document under `key`, its lines kept and its key paths shown with `key` in front."""
        lines = {k[1:]: v for k, v in self.lines.items() if k[:1] == (key,)}
        data = self.data.get(key) if isinstance(self.data, dict) else None
        return YamlDocument(self.path, data, lines, prefix=self.prefix + (key,))


def read_text(path: Path, what: str = "config file") -> str:
    """A file's text, or a ConfigError naming it (missing, unreadable, not UTF-8 text)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start}): give a YAML file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None


def read_yaml(path: str | Path, what: str = "config file") -> YamlDocument:
    """Parse a YAML file into a `YamlDocument`; every problem is a ConfigError naming file:line."""
    path = Path(path)
    loader = _Loader(read_text(path, what))
    try:
        node = _compose(loader, path)
        lines: dict[KeyPath, int] = {}
        if node is not None:
            _collect(path, node, (), lines)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise _malformed(path, exc) from None
    finally:
        loader.dispose()
    return YamlDocument(path, data, lines)


def read_mapping(path: str | Path, what: str = "config file") -> YamlDocument:
    """A YAML file that must hold a mapping of keys (an empty file is an empty mapping)."""
    doc = read_yaml(path, what)
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise doc.error((), f"a {what} holds a mapping of config keys, not {type(doc.data).__name__}")
    return doc


def parse_value(text: str) -> Any:
    """A `-s key=value` value, read as YAML (never eval'd); text that is not valid YAML stays text."""
    if not text.strip():
        return None
    loader = _Loader(text)
    try:
        node = _compose(loader, f"value {text[:40]!r}")
        return loader.construct_document(node) if node is not None else None
    except yaml.YAMLError:
        return text
    finally:
        loader.dispose()


def _compose(loader: _Loader, where: Path | str) -> yaml.Node | None:
    """The document's node graph, refused before anything walks or builds it when its aliases
    expand to more than MAX_VALUES values or refer to themselves."""
    node = loader.get_single_node()
    if node is not None and _expanded(node, {}, set(), where) > MAX_VALUES:
        raise ConfigError(f"{where}: its aliases (*name) expand to more than {MAX_VALUES:,} values; "
                          f"refusing to build it (a YAML alias bomb?)", located=True)
    return node


def _expanded(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int], where: Path | str) -> int:
    """How many values `node` stands for with every alias expanded; each node is counted once
    (`sizes`), so a bomb costs the size of its text, not of its expansion."""
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_nodes:
        raise ConfigError(f"{where}:{node.start_mark.line + 1}: an alias refers to a node that contains it; "
                          f"a config cannot be recursive", located=True)
    open_nodes.add(id(node))
    children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else (
        node.value if isinstance(node, yaml.SequenceNode) else [])
    total = 1
    for child in children:
        total += _expanded(child, sizes, open_nodes, where)
        if total > MAX_VALUES:
            break
    open_nodes.discard(id(node))
    sizes[id(node)] = total
    return total


def _malformed(path: Path, exc: yaml.YAMLError) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return ConfigError(f"{path}: malformed YAML: {problem}", located=True)
    return ConfigError(f"{path}:{mark.line + 1}: malformed YAML (line {mark.line + 1}, column {mark.column + 1}): "
                       f"{problem}", located=True)


def _collect(path: Path, node: yaml.Node, prefix: KeyPath, lines: dict[KeyPath, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.start_mark)
            if name in seen:
                raise ConfigError(f"{path}:{line}: {dotted(prefix + (name,))}: duplicate key (first at line "
                                  f"{seen[name]}); give each key once", key=prefix + (name,), located=True)
            seen[name] = line
            lines[prefix + (name,)] = line
            _collect(path, value_node, prefix + (name,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[prefix + (i,)] = item.start_mark.line + 1
            _collect(path, item, prefix + (i,), lines)
