"""Write `trainlib/signatures.py`: every registry entry's signature read from its builder, as Python
that imports no torch. `python -m trainlib.describe_registries` rewrites it; `--check` exits 1 when
it differs from the builders (tests/trainlib/test_signatures.py runs that check).

The builders stay the one source of truth: their keyword-only parameters (types, defaults), their
summaries and the plain-data options of their registration. A check (`check=`) must come from
`trainlib.entry_checks`; an option that is code (a device version) stays with the builder.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal

from trainlib import entry_checks, validation
from trainlib.registry import Entry, Param, Registry

TARGET = Path(__file__).with_name("signatures.py")
COMMAND = "python -m trainlib.describe_registries"
# registry name in trainlib.signatures -> the module whose import registers every builder
MODULES = {"MODELS": "trainlib.models", "DATASETS": "trainlib.data", "INITS": "trainlib.inits",
           "LOSSES": "trainlib.losses", "OPTIMIZERS": "trainlib.optimizers", "SCHEDULERS": "trainlib.schedulers",
           "TRANSFORMS": "trainlib.transforms"}
ALIASES = {value: name for name, value in vars(validation).items()
           if typing.get_origin(value) is typing.Annotated}
PLAIN = (str, int, float, bool, type(None))

HEADER = f'''"""Every registry entry's signature (its name, summary, parameters with their types and defaults, and
the options validation reads), described without importing torch: `trainlib.config` checks a config
against these and `launch catalog` lists them; importing a family's module attaches the builders.

GENERATED from the builders by `{COMMAND}`: do not edit
(tests/trainlib/test_signatures.py fails when this file and the builders differ).
"""
from typing import Any, Literal

from trainlib import entry_checks
from trainlib.registry import Registry
from trainlib.validation import (
    {", ".join(sorted(ALIASES.values()))},
)

'''


def annotation_source(ann: Any) -> str:
    """A type as Python source that rebuilds it: `PositiveFloat | None`, `Literal['a', 'b']`, `list[float]`."""
    if ann in ALIASES:
        return ALIASES[ann]
    if ann is type(None):
        return "None"
    if ann is Any:
        return "Any"
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(annotation_source(arg) for arg in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(arg) for arg in args)}]"
    if origin in (list, tuple, dict) and args:
        return f"{origin.__name__}[{', '.join(annotation_source(arg) for arg in args)}]"
    if ann in (int, float, bool, str, list, tuple, dict):
        return ann.__name__
    raise TypeError(f"cannot describe the type {ann!r} without its module: name it in trainlib/validation.py")


def value_source(value: Any) -> str | None:
    """Plain data as Python source; a check of trainlib.entry_checks by name; None for anything else."""
    if getattr(value, "__module__", None) == entry_checks.__name__:
        return f"entry_checks.{value.__name__}"
    if _plain(value):
        return repr(value)
    return None


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    return isinstance(value, PLAIN) and value == value and value not in (float("inf"), float("-inf"))


def _params_source(params: list[Param], indent: str) -> str:
    odd = [p.name for p in params if value_source(p.default) is None]
    if odd:
        raise TypeError(f"the default of '{odd[0]}' is not plain data (str, number, bool, None, list, dict)")
    lines = [f"{indent}{p.name!r}: ({annotation_source(p.annotation)}, {value_source(p.default)})," for p in params]
    return "{\n" + "\n".join(lines) + "\n" + indent[:-4] + "}" if lines else "{}"


def _entry_source(entry: Entry) -> str:
    own = _params_source([p for p in entry.params.values() if p.name in entry.own], " " * 13)
    meta = [f"{key}={value_source(value)}" for key, value in entry.meta.items() if value_source(value) is not None]
    return f"        ({entry.name!r}, {entry.summary!r},\n         {own},\n         dict({', '.join(meta)})),"


def registry_source(name: str, registry: Registry) -> str:
    entries = [entry for entry in registry.entries() if entry.builder is not None]
    return (f"{name} = Registry({registry.family!r})\n"
            f"{name}.describe_family(\n    {registry.shared_doc!r},\n"
            f"    {_params_source(list(registry.shared.values()), ' ' * 8)},\n    [\n"
            + "\n".join(_entry_source(entry) for entry in entries) + "\n    ])\n")


def render() -> str:
    """The text of trainlib/signatures.py, read from the builders (imports every family's module)."""
    from trainlib import signatures

    for module in MODULES.values():
        importlib.import_module(module)
    return HEADER + "\n".join(registry_source(name, getattr(signatures, name)) for name in MODULES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when trainlib/signatures.py is out of date")
    text = render()
    if parser.parse_args(argv).check:
        if TARGET.read_text() != text:
            print(f"error: {TARGET.name} differs from the registries' builders; run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
