"""Transform pipelines as a config writes them (``[random_crop, {normalize: {mean: [...]}}]``), parsed
and checked against the transforms' signatures (trainlib.signatures): no torch, nothing built.
`trainlib.transforms` builds them."""
from __future__ import annotations

from typing import Any

from trainlib.errors import ConfigError
from trainlib.signatures import TRANSFORMS

SAMPLE, BATCH = "sample", "batch"


def parse_pipeline(items: list[Any] | None, where: str, level: str = SAMPLE) -> list[dict] | None:
    """Turn ``[name | {name: {params}}]`` into validated ``[{name: ..., **params}]``, nested lists included."""
    if items is None:
        return None
    if not isinstance(items, list):
        raise ConfigError(f"'{where}' must be a list of transforms, e.g. [random_crop, normalize]", key=where)
    return [_parse_item(item, f"{where}[{i}]", level) for i, item in enumerate(items)]


def _parse_item(item: Any, where: str, level: str) -> dict:
    if isinstance(item, str):
        name, params = item, {}
    elif isinstance(item, dict) and "name" in item:
        name, params = item["name"], {k: v for k, v in item.items() if k != "name"}
    elif isinstance(item, dict) and len(item) == 1:
        name, params = next(iter(item.items()))
        params = params or {}
    else:
        raise ConfigError(f"'{where}' must be a name or {{name: {{params}}}}, not {item!r}", key=where)
    if not isinstance(params, dict):
        raise ConfigError(f"'{where}' parameters must be a mapping, not {params!r}", key=where)
    if name not in TRANSFORMS:
        raise ConfigError(f"'{where}': unknown transform '{name}'; valid: {', '.join(TRANSFORMS.names())}",
                          key=where)
    spec = {"name": name, **TRANSFORMS.validate(name, params, where)}
    entry = TRANSFORMS.get(name)
    if entry.meta.get("nested"):
        spec["transforms"] = parse_pipeline(spec["transforms"], f"{where}.transforms", level)
    elif entry.meta.get("level", SAMPLE) != level:
        raise ConfigError(_misplaced(name, where, level), key=where)
    return spec


def _misplaced(name: str, where: str, level: str) -> str:
    if level == SAMPLE:
        return f"'{where}': {name} mixes whole batches; put it in transforms.batch"
    batch_names = [e.name for e in TRANSFORMS.entries() if e.meta.get("level") == BATCH]
    return f"'{where}': {name} is a per-sample transform; transforms.batch takes {', '.join(batch_names)}"
