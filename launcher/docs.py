"""Reference sections of README.md and docs/*.md, generated from the schemas the code validates,
so they cannot drift.

    python -m launcher.docs           # rewrite the generated sections
    python -m launcher.docs --check   # exit 1 when a file is out of date

Each section sits between `<!-- BEGIN GENERATED: NAME -->` and `<!-- END GENERATED: NAME -->`
in one of those files (today docs/reference.md); SECTIONS says what renders it. Documenting
another pydantic model is one entry: ``"sweep-reference": lambda: model_reference(SweepFile)``
plus its two markers in any of the files.
"""
from __future__ import annotations

import re
import sys
import typing
from pathlib import Path
from typing import Any, Callable, Mapping

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
COMMAND = "python -m launcher.docs"


def _train_config() -> str:
    from trainlib.config import FAMILIES, TrainConfig

    return model_reference(TrainConfig, families=FAMILIES)


def _registries() -> str:
    from trainlib.config import FAMILIES
    from trainlib.transforms import TRANSFORMS
    from trainlib.visuals import VISUALS

    usage = {key: f"`{key}: {{name: NAME, PARAM: VALUE, ...}}`" for key in FAMILIES}
    usage["transforms"] = ("items of `transforms.train` / `transforms.eval` (mixup, cutmix: `transforms.batch`): "
                           "`NAME` or `{NAME: {PARAM: VALUE}}`")
    usage["visuals"] = ("`visuals.NAME: {PARAM: VALUE}` (`visuals.NAME: false` switches one off); "
                        "each writes to TensorBoard, some also to MLflow as PNG artifacts")
    return "\n\n".join(registry_reference(key, registry, usage[key])
                       for key, registry in {**FAMILIES, "transforms": TRANSFORMS, "visuals": VISUALS}.items())


def _sweep_file() -> str:
    from launcher.sweep.schema import SweepFile

    return model_reference(SweepFile)


SECTIONS: dict[str, Callable[[], str]] = {
    "config-reference": _train_config,
    "registries": _registries,
    "sweep-reference": _sweep_file,
}


# --- pydantic models -------------------------------------------------------------------------

def model_reference(model: type, families: Mapping[str, Any] | None = None) -> str:
    """A Markdown table of the model's fields (a nested model's fields inline as dotted keys),
    then a table for each model met inside another type (M | None, list[M], dict[str, M])."""
    families = families or {}
    queue, done, parts = [model], set(), []
    while queue:
        current = queue.pop(0)
        if current in done:
            continue
        done.add(current)
        rows = list(_field_rows(current, "", families, queue))
        title = "" if current is model else f"`{current.__name__}`\n\n"
        parts.append(title + _table(["key", "type", "default", "description"], rows))
    return "\n\n".join(parts)


def _field_rows(model: type, prefix: str, families: Mapping[str, Any], queue: list[type]):
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        if _is_model(info.annotation):
            yield from _field_rows(info.annotation, f"{key}.", families, queue)
            continue
        queue.extend(_models_inside(info.annotation))
        description = info.description or ""
        if key in families:
            type_text = "{name: ..., PARAM: ...}"
            description = description or (f"one of the `{key}` entries below, by name, with its params; "
                                          "a param not written takes the default listed there")
        else:
            from trainlib.validation import constraints, type_name

            type_text = type_name(info.annotation, yaml=True) + constraints(info.metadata)
        yield [f"`{key}`", f"`{type_text}`", _default(info), description]


def _models_inside(annotation: Any) -> list[type]:
    found = [annotation] if _is_model(annotation) else []
    for arg in typing.get_args(annotation):
        found += _models_inside(arg)
    return found


def _is_model(obj: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _default(info: Any) -> str:
    if info.is_required():
        return "required"
    return f"`{_flow_yaml(info.get_default(call_default_factory=True))}`"


def _flow_yaml(value: Any) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)
    return text.removesuffix("\n...\n").strip()


# --- registries ------------------------------------------------------------------------------

def registry_reference(key: str, registry: Any, usage: str) -> str:
    rows = [[f"`{e.name}`", _params(e), e.summary + _writes(e)] for e in registry.entries()]
    return f"#### {key}\n\n{usage}\n\n" + _table(["name", "params (type = default)", "what it is"], rows)


def _writes(entry: Any) -> str:
    """Where a visual writes (other families have no destinations)."""
    writes = entry.meta.get("writes")
    return f" (writes to: {', '.join(writes)})" if writes else ""


def _params(entry: Any) -> str:
    if not entry.params:
        return "-"
    return "<br>".join(f"`{p.name}` ({p.type_name}) = `{_flow_yaml(p.default)}`" for p in entry.params.values())


# --- the files ---------------------------------------------------------------------------------

def _table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header), *(line(r) for r in rows)])


def files() -> list[Path]:
    """The Markdown files that may hold generated sections: README.md and docs/*.md."""
    return [README, *sorted(DOCS.glob("*.md"))]


def _pattern(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- BEGIN GENERATED: {re.escape(name)} [^>]*-->\n).*?(<!-- END GENERATED: "
                      rf"{re.escape(name)} -->)", re.S)


def render(text: str) -> str:
    """`text` with every generated section it holds rendered afresh."""
    for name, make in SECTIONS.items():
        pattern = _pattern(name)
        if pattern.search(text):
            body = make()
            text = pattern.sub(lambda m: f"{m.group(1)}{body}\n{m.group(2)}", text)
    return text


def render_all() -> dict[Path, tuple[str, str]]:
    """Each file's current and fresh text; every section must have its markers in one of them."""
    texts = {path: path.read_text() for path in files()}
    for name in SECTIONS:
        if not any(_pattern(name).search(text) for text in texts.values()):
            raise SystemExit(f"no file of {', '.join(p.name for p in texts)} has the "
                             f"'<!-- BEGIN GENERATED: {name} ... -->' / '<!-- END GENERATED: {name} -->' markers")
    return {path: (text, render(text)) for path, text in texts.items()}


def main(argv: list[str]) -> int:
    stale = {path: fresh for path, (current, fresh) in render_all().items() if fresh != current}
    names = ", ".join(str(path.relative_to(ROOT)) for path in stale)
    if "--check" in argv:
        if stale:
            print(f"out of date: {names}: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    for path, fresh in stale.items():
        path.write_text(fresh)
    print(f"updated: {names}" if stale else "the generated sections are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
