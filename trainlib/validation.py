"""What every schema here shares: the constrained types, how a type is named to users, and
the one formatter that turns a pydantic error into a one-line ConfigError carrying its key.
Serves the train config, the registries' builder signatures and the sweep file.
"""
from __future__ import annotations

import math
import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from trainlib.errors import ConfigError

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
# Far above any useful rate (a rate this large only makes a run diverge, on purpose in tests), and far
# below float32's 3.4e38 even after the head and worker multipliers: --lr 1e300 overflowed inside SGD.
MAX_LR = 1e30
LearningRate = Annotated[float, Field(gt=0, le=MAX_LR)]

# Run, experiment and sweep names: also the name of a folder (the run folder, the experiment's
# artifact folder, the sweep folder), so one path component, never "..", "/x" or "a/b".
MAX_NAME_LENGTH = 250  # MLflow's limit for a run name
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
SafeName = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)]

_ALIAS_NAMES = {PositiveFloat: "float > 0", NonNegativeFloat: "float >= 0", PositiveInt: "int > 0",
                NonNegativeInt: "int >= 0", Probability: "float in [0, 1]", LearningRate: f"float in (0, {MAX_LR:g}]",
                SafeName: f"name ([A-Za-z0-9_.-], not starting with . _ -, up to {MAX_NAME_LENGTH} characters)"}


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


# pydantic error types that a value outside a field's range or pattern raises
_OUT_OF_RANGE = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "string_too_short",
                 "string_too_long", "string_pattern_mismatch", "value_error"}
_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "min_length": "min length", "max_length": "max length",
           "pattern": "matching"}


def validation_error(exc: ValidationError, model: type[BaseModel], noun: str = "config key") -> ConfigError:
    """The first error of `exc` as one line naming the dotted key (and, for an unknown key, the allowed ones;
    for a value out of range, the range)."""
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    key = ".".join(str(part) for part in loc)
    if err["type"] == "extra_forbidden":
        message = f"unknown {noun} '{key}'; allowed: {', '.join(allowed_keys(model, loc[:-1]))}"
    elif err["type"] == "missing":
        message = f"required {noun} '{key}' is missing"
    else:
        message = err["msg"].removeprefix("Value error, ")
        valid = field_type(model, loc) if err["type"] in _OUT_OF_RANGE else None
        if valid and "input" in err:
            reason = (message if err["type"] == "value_error" else
                      f"{shown(err['input'])} is {'not allowed' if err['type'].startswith('string') else 'out of range'}")
            message = f"bad value for '{key}': {reason}; valid: {valid}"
        elif "input" in err and not isinstance(err["input"], (dict, list)):
            message = f"bad value for '{key}': {message} (got {shown(err['input'])})"
        elif key:
            message = f"bad value for '{key}': {message}"
    return ConfigError(message, key=loc)


def shown(value: Any, limit: int = 60) -> str:
    """A value as an error line quotes it: a 10,000-character string is not repeated whole."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value))} characters)"


def constraints(metadata: list[Any]) -> str:
    """A field's bounds, as the config reference and the errors show them: ` (>= 1, <= 1000000)`."""
    found = [f"{sign} {getattr(m, attr)}" for m in metadata for attr, sign in _BOUNDS.items()
             if getattr(m, attr, None) is not None]
    return f" ({', '.join(found)})" if found else ""


def field_type(model: type, loc: tuple[Any, ...]) -> str | None:
    """The type and bounds of the field at `loc` (`int (>= 0, <= 4294967295)`), if it has bounds."""
    holder = _node_at(model, loc[:-1]) if loc else None
    if not (isinstance(holder, type) and issubclass(holder, BaseModel)) or str(loc[-1]) not in holder.model_fields:
        return None
    info = holder.model_fields[str(loc[-1])]
    text = type_name(info.annotation) + constraints(info.metadata)
    return text if info.metadata or any(name in text for name in _ALIAS_NAMES.values()) else None


def allowed_keys(model: type, loc: tuple[Any, ...]) -> list[str]:
    """The keys of the model at `loc`."""
    node = _node_at(model, loc)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    return []


def _node_at(model: type, loc: tuple[Any, ...]) -> Any:
    """Follow `loc` through the schema's annotations."""
    node: Any = model
    for part in loc:
        node = _unwrap(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            node = node.model_fields[str(part)].annotation if str(part) in node.model_fields else None
        elif typing.get_origin(node) is dict:
            node = typing.get_args(node)[1]
    return _unwrap(node)


def _unwrap(tp: Any) -> Any:
    """Optional[X] / Annotated[X, ...] -> X."""
    while True:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if typing.get_origin(tp) in (typing.Union, typing.Annotated, types.UnionType):
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else args[0]
            continue
        return tp


def refuse_bool_as_number(value: bool, annotation: Any) -> None:
    """A ValueError when `annotation` takes the boolean `value` only as a number (true -> 1)."""
    try:
        TypeAdapter(annotation).validate_python(value, strict=True)
    except ValidationError:
        raise ValueError(f"{str(value).lower()} is not a number") from None


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
