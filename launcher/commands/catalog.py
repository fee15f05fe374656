"""`launch catalog [FAMILY]`: every registered name with its parameters, read from the registries."""
from __future__ import annotations

import click

from launcher.guard import guarded

# family -> (module, registry attribute): the signatures, read without importing torch
FAMILIES = {
    "models": ("trainlib.signatures", "MODELS"),
    "datasets": ("trainlib.signatures", "DATASETS"),
    "inits": ("trainlib.signatures", "INITS"),
    "losses": ("trainlib.signatures", "LOSSES"),
    "optimizers": ("trainlib.signatures", "OPTIMIZERS"),
    "schedulers": ("trainlib.signatures", "SCHEDULERS"),
    "transforms": ("trainlib.signatures", "TRANSFORMS"),
    "visuals": ("trainlib.visual_settings", "VISUALS"),
}


@click.command("catalog")
@click.argument("family", required=False)
@guarded
def catalog(family: str | None) -> None:
    """List every name of a FAMILY (all families when omitted) with its parameters (type = default).

    FAMILY: models, datasets, inits, losses, optimizers, schedulers, transforms, visuals.
    """
    from trainlib.errors import ConfigError

    if family is not None and family not in FAMILIES:
        raise ConfigError(f"unknown catalog family '{family}'; valid: {', '.join(FAMILIES)}")
    for name in [family] if family else FAMILIES:
        click.echo("\n".join(describe_family(name, load_registry(name))))


def load_registry(family: str):
    from importlib import import_module

    module, attr = FAMILIES[family]
    return getattr(import_module(module), attr)


def describe_family(family: str, registry) -> list[str]:
    lines = [f"{family} ({len(registry.names())})"]
    if registry.shared:
        lines.append(f"  (every entry) {registry.shared_doc}")
        lines += _param_lines(registry.shared.values())
    for entry in registry.entries():
        lines.append(f"  {entry.name}: {entry.summary}")
        if entry.refused:
            lines.append(f"      refused: {entry.refused}")
        lines += _param_lines(p for p in entry.params.values() if p.name in entry.own)
    return lines


def _param_lines(params) -> list[str]:
    return [f"      {p.name}: {p.type_name} = {p.default!r}" for p in params]
