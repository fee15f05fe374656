"""`launch lr-find`: an LR range test on the train config; prints a suggested lr, saves the plot."""
from __future__ import annotations

import time

import click

from launcher.config_args import cli_layers, command_line, config_options, flag_values
from launcher.guard import guarded


@click.command("lr-find")
@config_options
@click.option("--start-lr", type=click.FloatRange(min=0, min_open=True), default=1e-5, show_default=True,
              help="First learning rate.")
@click.option("--end-lr", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Last learning rate (the test stops earlier when the loss diverges).")
@click.option("--num-iters", type=click.IntRange(min=3), default=200, show_default=True,
              help="Batches to train, the lr growing exponentially from start to end.")
@guarded
def lr_find(config_file, overrides, start_lr, end_lr, num_iters, **flags):
    """Find a learning rate: train NUM_ITERS batches with an exponentially growing lr, plot the
    smoothed loss against the lr (MLflow artifact lr_find.png in its own run) and suggest the
    lr at the loss minimum / 10 (the steepest descent, more aggressive, is printed too)."""
    from trainlib.config import resolve
    from trainlib.errors import ConfigError

    if start_lr >= end_lr:
        raise ConfigError(f"--start-lr ({start_lr:g}) must be below --end-lr ({end_lr:g})")
    cfg = resolve(cli_layers(config_file, overrides, flag_values(flags)))
    if cfg.tracking.run_name is None:
        name = f"lr-find-{cfg.model['name']}-{cfg.data['name']}-{time.strftime('%Y%m%d-%H%M%S')}"
        cfg = resolve([*cli_layers(config_file, overrides, flag_values(flags)), {"tracking": {"run_name": name}}])
    from trainlib.lr_find import find_lr

    find_lr(cfg, start_lr, end_lr, num_iters, echo=click.echo, command=command_line())
