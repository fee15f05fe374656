"""Config layers from the command line: --config FILE, -s dotted.key=value, common flags."""
from __future__ import annotations

from typing import Any, Callable

import sys

import click

# flag name -> dotted config key it sets
FLAG_KEYS = {
    "model": "model.name",
    "init": "init.name",
    "loss": "loss.name",
    "optimizer": "optimizer.name",
    "scheduler": "scheduler.name",
    "epochs": "epochs",
    "lr": "optimizer.lr",
    "batch_size": "batch_size",
    "seed": "seed",
    "device": "device",
    "threads": "threads",
    "tracking_uri": "tracking.uri",
    "experiment": "tracking.experiment",
    "output_dir": "output.dir",
    "workers": "distributed.workers",
    "gpus_per_worker": "distributed.gpus_per_worker",
}


def config_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options every config-taking command shares (train, and sweep's base config)."""
    options = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML train config file."),
        click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a config key, e.g. -s optimizer.name=adamw -s optimizer.lr=0.01 (repeatable)."),
        click.option("--model", help="Model name (net, resnet34, ...)."),
        click.option("--init", help="Weight init name (`launch catalog inits`)."),
        click.option("--loss", help="Loss name (`launch catalog losses`)."),
        click.option("--optimizer", help="Optimizer name (`launch catalog optimizers`)."),
        click.option("--scheduler", help="LR schedule name (`launch catalog schedulers`)."),
        click.option("--epochs", type=int, help="Training epochs."),
        click.option("--lr", type=float, help="Base learning rate (optimizer.lr)."),
        click.option("--batch-size", type=int, help="Batch size (per worker under DDP)."),
        click.option("--seed", type=int, help="Random seed."),
        click.option("--device", help="auto, cpu, cuda, cuda:N, mps."),
        click.option("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)."),
        click.option("--experiment", help="MLflow experiment name."),
        click.option("--output-dir", help="Root folder for run folders (default: runs)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def cli_layers(config_file: str | None, overrides: tuple[str, ...], flags: dict[str, Any]) -> list:
    """Layers above the defaults, lowest first: file (a YamlDocument, so errors name its lines),
    then -s overrides, then flags."""
    from trainlib.config import load_yaml, merge, nest, parse_override

    layers: list = []
    if config_file:
        layers.append(load_yaml(config_file))
    set_layer: dict[str, Any] = {}
    for text in overrides:
        set_layer = merge(set_layer, nest(*parse_override(text)))
    layers.append(set_layer)
    flag_layer: dict[str, Any] = {}
    for name, key in FLAG_KEYS.items():
        if flags.get(name) is not None:
            flag_layer = merge(flag_layer, nest(key, flags[name]))
    layers.append(flag_layer)
    return layers


def command_line() -> str:
    """The command as the user typed it, for the run's `launch.command` tag (the library never reads sys.argv)."""
    return " ".join(sys.argv)


def flag_values(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {name: kwargs.get(name) for name in FLAG_KEYS}
