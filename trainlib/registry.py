"""Name -> builder registries, one per family (models, optimizers, losses, ...).

A builder's positional parameters are supplied by trainlib (the model's parameters, the
number of classes...); its keyword-only parameters are what a user sets in a config, and
their annotations and defaults are the schema: validation, `launch catalog` and the
config reference all read them from here.

An entry can also be *described* before its builder exists (`describe`): `trainlib.signatures`
describes every entry of every family without importing torch, so a config is checked
without building anything; the family's module then attaches the builder (`register`).
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from trainlib.errors import ConfigError
from trainlib.validation import refuse_bool_as_number, refuse_non_finite, type_name

@dataclass(frozen=True)
class Param:
    name: str
    annotation: Any
    default: Any

    @property
    def type_name(self) -> str:
        return type_name(self.annotation)


@dataclass(frozen=True)
class Entry:
    name: str
    builder: Callable[..., Any]
    summary: str
    params: dict[str, Param] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    own: frozenset[str] = frozenset()  # the builder's own parameters (the rest are the family's shared ones)

    @property
    def refused(self) -> str | None:
        """Why this entry cannot be used here (it stays listed, with the reason)."""
        return self.meta.get("refused")

    def defaults(self) -> dict[str, Any]:
        return {p.name: copy.deepcopy(p.default) for p in self.params.values()}


def _keyword_params(fn: Callable[..., Any]) -> dict[str, Param]:
    sig = inspect.signature(fn)
    hints = inspect.get_annotations(fn, eval_str=True)
    params = {}
    for p in sig.parameters.values():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        if p.default is inspect.Parameter.empty:
            raise TypeError(f"{fn.__name__}: config parameter '{p.name}' needs a default")
        if p.name not in hints:
            raise TypeError(f"{fn.__name__}: config parameter '{p.name}' needs a type annotation")
        params[p.name] = Param(p.name, hints[p.name], p.default)
    return params


class Registry:
    """Lowercase name -> builder, with the builder's keyword-only parameters as its schema.

    `shared` (optional) is a function whose keyword-only parameters every entry of the
    family also takes (e.g. warmup for every LR schedule): they are validated and listed
    with each entry, and left for the family's own code to apply (`Registry.build`
    passes a builder only its own parameters).
    `meta["refused"]` keeps an entry listed but makes `validate` reject it with that reason.
    """

    def __init__(self, family: str, shared: Callable[..., Any] | None = None):
        self.family = family
        self.shared: dict[str, Param] = {}
        self.shared_doc = ""
        self._entries: dict[str, Entry] = {}
        if shared:
            self.share(shared)

    def share(self, fn: Callable[..., Any]) -> None:
        """Every entry of the family also takes `fn`'s keyword-only parameters (see the class doc)."""
        self.shared = _keyword_params(fn)
        self.shared_doc = inspect.getdoc(fn) or ""

    def describe_family(self, shared_doc: str, shared: dict[str, tuple[Any, Any]],
                        entries: list[tuple[str, str, dict[str, tuple[Any, Any]], dict[str, Any]]]) -> None:
        """The family as trainlib.signatures describes it: its shared parameters ({name: (type, default)})
        and its entries, each (name, summary, its own parameters, its plain options)."""
        self.shared = {key: Param(key, *spec) for key, spec in shared.items()}
        self.shared_doc = shared_doc
        for name, summary, own, meta in entries:
            params = {key: Param(key, *spec) for key, spec in own.items()}
            self.describe(Entry(name, None, summary, {**params, **self.shared}, meta, frozenset(params)))

    def describe(self, entry: Entry) -> None:
        """An entry known by its signature alone (no builder yet): enough to validate and list it."""
        self._entries[entry.name] = entry

    def register(self, name: str, summary: str | None = None, **meta: Any):
        """Add the decorated builder as entry `name` (over its description, if any)."""
        if name != name.lower():
            raise ValueError(f"{self.family} names are lowercase: {name!r}")

        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._entries and self._entries[name].builder is not None:
                raise ValueError(f"{self.family} '{name}' is registered twice")
            doc = summary or (inspect.getdoc(fn) or "").split("\n")[0]
            own = _keyword_params(fn)
            clash = sorted(set(own) & set(self.shared))
            if clash:
                raise ValueError(f"{self.family} '{name}': parameter '{clash[0]}' is shared by the family")
            self._entries[name] = Entry(name, fn, doc, {**own, **self.shared}, meta, frozenset(own))
            return fn

        return add

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(
                f"unknown {self.family} '{name}'; valid: {', '.join(self.names())}", key=f"{self.family}.name"
            ) from None

    def validate(self, name: str, params: dict[str, Any], where: str | None = None) -> dict[str, Any]:
        """Return the entry's full parameter set (defaults filled in), type-checked."""
        from pydantic import TypeAdapter, ValidationError

        where = where or self.family
        try:
            entry = self.get(name)
        except ConfigError as exc:
            raise ConfigError(str(exc), key=f"{where}.name") from None
        if entry.refused:
            raise ConfigError(f"{self.family} '{name}' cannot be used here: {entry.refused}", key=f"{where}.name")
        unknown = sorted(set(params) - set(entry.params))
        if unknown:
            valid = ", ".join(entry.params) or "(none)"
            raise ConfigError(
                f"unknown parameter '{where}.{unknown[0]}' for {self.family} '{name}'; valid: {valid}",
                key=f"{where}.{unknown[0]}")
        resolved = entry.defaults()
        for key, value in params.items():
            param = entry.params[key]
            refuse_non_finite(value, (where, key))
            try:
                if isinstance(value, bool):
                    refuse_bool_as_number(value, param.annotation)
                resolved[key] = TypeAdapter(param.annotation).validate_python(value, strict=False)
            except (ValidationError, ValueError) as exc:
                reason = _reason(exc)
                raise ConfigError(
                    f"bad value {value!r} for '{where}.{key}' ({param.type_name}): {reason}", key=f"{where}.{key}"
                ) from None
        check = entry.meta.get("check")
        if check is not None:
            problem = check(**resolved)
            if problem:
                raise ConfigError(f"bad {where} '{name}': {problem}", key=where)
        return resolved

    def build(self, spec: dict[str, Any], *context: Any) -> Any:
        """Call the builder for a validated spec ``{name: ..., **params}`` with its own params.

        torch constructors check their arguments and raise ValueError with a clear reason
        (e.g. "Invalid learning rate"); that is the user's input, so it becomes a ConfigError.
        """
        entry = self.get(spec["name"])
        if entry.builder is None:
            raise RuntimeError(f"{self.family} '{entry.name}' is only described: import its module to build it")
        try:
            return entry.builder(*context, **{k: v for k, v in spec.items() if k in entry.own})
        except ValueError as exc:
            raise ConfigError(f"bad {self.family} '{spec['name']}' parameters: {exc}") from None

    def shared_values(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The family-wide parameters of a spec, defaults filled in."""
        return {k: spec.get(k, copy.deepcopy(p.default)) for k, p in self.shared.items()}


def _reason(exc: Exception) -> str:
    """Why a value was refused; a bound in its short form (1e+30, not 31 digits)."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    err = exc.errors()[0]
    bounds = {"gt": "greater than", "ge": "greater than or equal to", "lt": "less than", "le": "less than or equal to"}
    for name, words in bounds.items():
        if isinstance(err.get("ctx", {}).get(name), (int, float)):
            return f"Input should be {words} {err['ctx'][name]:g}"
    return err["msg"]
