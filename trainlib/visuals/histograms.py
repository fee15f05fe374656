"""Histograms of every parameter's weights and (last batch's) gradients (seed 4.4).

Binned with torch.histc and written raw: tensorboardX's own binning (numpy) costs ~5 ms a
tensor, which every epoch on every parameter adds up to more than the 5% budget.
"""
from __future__ import annotations

import math

import torch

from trainlib.config import EveryEpochs
from trainlib.engine import EvalResult
from trainlib.observers import FitContext, Observer, due

BINS = 64


def write_histogram(writer, tag: str, values: torch.Tensor, step: int) -> None:
    """A histogram of the finite values (none: nothing written)."""
    values = values.detach().flatten().float()
    if not values.numel():
        return
    low, high = (float(v) for v in torch.aminmax(values))
    if not (math.isfinite(low) and math.isfinite(high)):  # NaN/Inf: the diagnosis reports them
        values = values[torch.isfinite(values)]
        if not values.numel():
            return
        low, high = (float(v) for v in torch.aminmax(values))
    edges = (low - 0.5, high + 0.5) if low == high else (low, high)  # a constant (e.g. a zero init): one bin
    counts = torch.histc(values, BINS, *edges)
    limits = torch.linspace(*edges, BINS + 1)[1:]
    writer.add_histogram_raw(tag, low, high, values.numel(), float(values.sum()), float(values.dot(values)),
                             limits.tolist(), counts.tolist(), step)


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
            write_histogram(self.writer, f"weights/{name}", p, epoch)
            if p.grad is not None:
                write_histogram(self.writer, f"grads/{name}", p.grad, epoch)
