"""Histograms of every parameter's weights and (last batch's) gradients (seed 4.4).

All tensors are binned together, in a dozen torch ops over their concatenation, and written
raw: tensorboardX's own binning (numpy) costs ~5 ms a tensor, and even one torch.histc per
tensor costs ~1 ms each (a dozen small ops), which every logged epoch adds up on a small run.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainlib.engine import EvalResult
from trainlib.observers import FitContext, Observer
from trainlib.visual_settings import EveryEpochs, VISUALS

BINS = 64


@dataclass
class Histogram:
    """What TensorBoard's histogram plugin takes: over the finite values, `counts[i]` values
    fall at or below `limits[i]` (and above the limit before)."""

    min: float
    max: float
    num: int
    sum: float
    sum_squares: float
    limits: list[float]
    counts: list[float]


def histograms(tensors: list[torch.Tensor]) -> list[Histogram | None]:
    """A histogram of each tensor's finite values (None: it has none), BINS equal bins from its
    min to its max (a constant, e.g. a zero init, gets one bin's width around it)."""
    values = torch.cat([t.detach().flatten().float() for t in tensors])
    owner = torch.repeat_interleave(torch.arange(len(tensors), device=values.device),
                                    torch.tensor([t.numel() for t in tensors], device=values.device))
    finite = values.isfinite()  # NaN/Inf: the diagnosis reports them
    if not bool(finite.all()):
        values, owner = values[finite], owner[finite]
    n = len(tensors)
    low = values.new_full((n,), float("inf")).scatter_reduce(0, owner, values, "amin")
    high = values.new_full((n,), float("-inf")).scatter_reduce(0, owner, values, "amax")
    flat = low == high
    start, stop = torch.where(flat, low - 0.5, low), torch.where(flat, high + 0.5, high)
    width = (stop - start) / BINS
    bins = ((values - start[owner]) / width[owner]).floor().long().clamp(0, BINS - 1)
    counts = torch.bincount(owner * BINS + bins, minlength=n * BINS).view(n, BINS)
    wide = values.double()
    sums = torch.bincount(owner, weights=wide, minlength=n), torch.bincount(owner, weights=wide * wide, minlength=n)
    limits = start[:, None] + width[:, None] * torch.arange(1, BINS + 1, device=values.device)
    num = torch.bincount(owner, minlength=n).tolist()
    rows = zip(low.tolist(), high.tolist(), num, *(s.tolist() for s in sums), limits.tolist(), counts.tolist())
    return [Histogram(lo, hi, k, s, sq, lim, [float(c) for c in cnt]) if k else None
            for lo, hi, k, s, sq, lim, cnt in rows]


def write_histograms(writer, named: dict[str, torch.Tensor], step: int) -> None:
    for tag, h in zip(named, histograms(list(named.values()))):
        if h is not None:
            writer.add_histogram_raw(tag, h.min, h.max, h.num, h.sum, h.sum_squares, h.limits, h.counts, step)


class Histograms(Observer):
    def __init__(self, item: EveryEpochs):
        self.item = item

    def on_fit_start(self, ctx: FitContext) -> None:
        self.writer = ctx.writer
        self.model = ctx.model
        self.due = ctx.due

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult) -> None:
        if not self.due(epoch, self.item.every):
            return
        named = {}
        for name, p in self.model.named_parameters():
            named[f"weights/{name}"] = p
            if p.grad is not None:
                named[f"grads/{name}"] = p.grad
        write_histograms(self.writer, named, epoch)


@VISUALS.register("histograms")
def histograms_visual(item: EveryEpochs, model: nn.Module, sample: torch.Tensor) -> Observer:
    return Histograms(item)
