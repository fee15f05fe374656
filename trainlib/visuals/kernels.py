"""The kernels of every conv layer as an image grid (seed 4.2)."""
from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from trainlib.engine import EvalResult
from trainlib.observers import FitContext, Observer, due
from trainlib.visuals.catalog import TENSORBOARD, VISUALS
from trainlib.visuals.images import conv_layers, for_display, grid
from trainlib.visuals.items import EveryEpochs
from trainlib.visuals.sink import Sink


class KernelsVisual(EveryEpochs):
    max_channels: int = Field(16, ge=1, description="at most this many output (and input) channels per conv layer")


def kernel_grid(weight: torch.Tensor, max_channels: int) -> torch.Tensor:
    """RGB (or gray) tiles when a kernel sees 3 (or 1) channels; else one gray tile per
    (output, input) channel pair, a row per output channel."""
    w = weight.detach().float().cpu()[:max_channels]
    out_ch, in_ch = w.shape[:2]
    if in_ch in (1, 3):
        return grid(for_display(w), nrow=8)
    w = w[:, :max_channels]
    tiles = w.reshape(-1, 1, *w.shape[2:])
    return grid(for_display(tiles), nrow=w.shape[1])


class ConvKernels(Observer):
    def __init__(self, item: KernelsVisual):
        self.item = item

    def on_fit_start(self, ctx: FitContext) -> None:
        self.sink = Sink(ctx)
        self.layers = conv_layers(ctx.model)
        self.epochs = ctx.epochs

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult) -> None:
        if due(epoch, self.item.every, self.epochs):
            for name, conv in self.layers.items():
                self.sink.image(f"kernels/{name}", kernel_grid(conv.weight, self.item.max_channels), epoch)


@VISUALS.register("kernels", KernelsVisual, writes=TENSORBOARD, summary="conv kernels of every conv layer")
def kernels(item: KernelsVisual, model: nn.Module, sample: torch.Tensor) -> Observer | None:
    return ConvKernels(item) if conv_layers(model) else None
