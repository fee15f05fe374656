"""The run's hyperparameters with its final metrics, for TensorBoard's HParams tab."""
from __future__ import annotations

import json

import torch
from torch import nn

from trainlib.observers import FitContext, Observer
from trainlib.sections import flatten
from trainlib.visual_settings import Toggle, VISUALS

# sections that do not change what is trained
SKIPPED = ("visuals.", "diagnose.", "tracking.", "output.", "loader.")


def hparam_values(config: dict) -> dict[str, bool | int | float | str]:
    values = {}
    for key, value in flatten(config).items():
        if not key.startswith(SKIPPED):
            values[key] = value if isinstance(value, (bool, int, float, str)) else json.dumps(value)
    return values


class HParams(Observer):
    def on_fit_start(self, ctx: FitContext) -> None:
        self.ctx = ctx

    def on_fit_end(self, epoch: int, final: dict[str, float]) -> None:
        metrics = {f"hparam/{key}": value for key, value in final.items()}
        self.ctx.writer.add_hparams(hparam_values(self.ctx.config.to_dict()), metrics, name="hparams",
                                    global_step=epoch)


@VISUALS.register("hparams")
def hparams(item: Toggle, model: nn.Module, sample: torch.Tensor) -> Observer:
    return HParams()
