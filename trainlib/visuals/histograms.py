"""Histograms of every parameter's weights and (last batch's) gradients (seed 4.4)."""
from __future__ import annotations

import torch

from trainlib.config import EveryEpochs
from trainlib.engine import EvalResult
from trainlib.observers import FitContext, Observer, due


def _finite(values: torch.Tensor) -> torch.Tensor:
    values = values.detach().float().cpu().flatten()
    return values if bool(torch.isfinite(values).all()) else values[torch.isfinite(values)]


class Histograms(Observer):
    def __init__(self, item: EveryEpochs):
        self.item = item

    def on_fit_start(self, ctx: FitContext) -> None:
        self.writer = ctx.writer
        self.model = ctx.model
        self.epochs = ctx.epochs

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult) -> None:
        if not due(epoch, self.item.every, self.epochs):
            return
        for name, p in self.model.named_parameters():
            for kind, values in (("weights", p), ("grads", p.grad)):
                finite = _finite(values) if values is not None else None
                if finite is not None and finite.numel():
                    self.writer.add_histogram(f"{kind}/{name}", finite, epoch)
