"""What every schema here shares: the constrained types, how a type is named to users, and
the one formatter that turns a pydantic error into a one-line ConfigError carrying its key.
Serves the train config, the registries' builder signatures and the sweep file.
"""
from __future__ import annotations

import math
import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Field, ValidationError

from trainlib.errors import ConfigError

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]

_ALIAS_NAMES = {PositiveFloat: "float > 0", NonNegativeFloat: "float >= 0", PositiveInt: "int > 0",
                NonNegativeInt: "int >= 0", Probability: "float in [0, 1]"}


def type_name(ann: Any, yaml: bool = False) -> str:
    """How a type reads to users: `float > 0`, `list[float]`, `Literal['a', 'b'] | None` in
    `launch catalog` and errors; with `yaml`, in YAML's words for the README: `a | b | null`, `any`."""
    for alias, name in _ALIAS_NAMES.items():
        if ann == alias:
            return name
    if ann is type(None):
        return "null" if yaml else "None"
    if ann is Any and yaml:
        return "any"
    origin, args = get_origin(ann), get_args(ann)
    if origin is Annotated:
        return type_name(args[0], yaml)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(arg, yaml) for arg in args)
    if origin is Literal:
        return " | ".join(str(arg) for arg in args) if yaml else str(ann).replace("typing.", "")
    if not args:
        return getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
    return f"{type_name(origin, yaml)}[{', '.join(type_name(arg, yaml) for arg in args)}]"


def validation_error(exc: ValidationError, model: type[BaseModel], noun: str = "config key") -> ConfigError:
    """The first error of `exc` as one line naming the dotted key (and, for an unknown key, the allowed ones)."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    key = ".".join(str(part) for part in loc)
    if err["type"] == "extra_forbidden":
        message = f"unknown {noun} '{key}'; allowed: {', '.join(allowed_keys(model, loc[:-1]))}"
    elif err["type"] == "missing":
        message = f"required {noun} '{key}' is missing"
    else:
        message = err["msg"].removeprefix("Value error, ")
        if "input" in err and not isinstance(err["input"], (dict, list)):
            message = f"bad value for '{key}': {message} (got {err['input']!r})"
        elif key:
            message = f"bad value for '{key}': {message}"
    return ConfigError(message, key=loc)


def allowed_keys(model: type, loc: tuple[Any, ...]) -> list[str]:
    """Follow `loc` through the schema's annotations to the model holding the last key."""
    node: Any = model
    for part in loc:
        node = _unwrap(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            node = node.model_fields[str(part)].annotation if str(part) in node.model_fields else None
        elif typing.get_origin(node) is dict:
            node = typing.get_args(node)[1]
    node = _unwrap(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    """Optional[X] / Annotated[X, ...] -> X."""
    while True:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (typing.Union, typing.Annotated, types.UnionType):
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else args[0]
            continue
        return tp


def refuse_non_finite(data: Any, prefix: tuple = ()) -> None:
    """A ConfigError at the first inf or nan anywhere in `data` (YAML `.inf`, `--lr inf`, `-s x=nan`)."""
    if isinstance(data, float) and not math.isfinite(data):
        key = ".".join(str(p) for p in prefix)
        raise ConfigError(f"bad value for '{key}': {data} is not a finite number", key=prefix)
    if isinstance(data, dict):
        for name, value in data.items():
            refuse_non_finite(value, prefix + (name,))
    elif isinstance(data, (list, tuple)):
        for i, value in enumerate(data):
            refuse_non_finite(value, prefix + (i,))
