"""The kernels of every conv layer as image grids, both of the tutorial's views (seed 4.2):
`kernels/<layer>` all kernels in one grid, `kernels_split/<layer>` one row per output channel."""
from __future__ import annotations

import torch
from torch import nn

from trainlib.engine import EvalResult
from trainlib.observers import FitContext, Observer
from trainlib.visual_settings import KernelsVisual, VISUALS
from trainlib.visuals.images import conv_layers, for_display, grid
from trainlib.visuals.sink import Sink


def kernel_grid(weight: torch.Tensor, max_channels: int) -> torch.Tensor:
    """All kernels in one grid, each tile scaled on its own: RGB tiles when a kernel sees 3 (or a multiple of 3)
    channels, as the tutorial's `kernels.view(-1, 3, k_h, k_w)`; else one gray tile per (output, input) pair."""
    w = weight.detach().float().cpu()[:max_channels]
    in_ch = w.shape[1]
    tiles = w.reshape(-1, 3 if in_ch % 3 == 0 else 1, *w.shape[2:])
    return grid(for_display(tiles[:8 * max_channels]), nrow=8)


def kernel_split_grid(weight: torch.Tensor, max_channels: int) -> torch.Tensor:
    """One row per output channel: its kernel for each input channel as a gray tile scaled on its own
    (the tutorial's per-output-channel `make_grid(kernels[o].unsqueeze(1), scale_each=True)`)."""
    w = weight.detach().float().cpu()[:max_channels, :max_channels]
    return grid(for_display(w.reshape(-1, 1, *w.shape[2:])), nrow=w.shape[1])[:1]  # make_grid repeats gray to RGB


class ConvKernels(Observer):
    def __init__(self, item: KernelsVisual):
        self.item = item

    def on_fit_start(self, ctx: FitContext) -> None:
        self.sink = Sink(ctx)
        self.layers = conv_layers(ctx.model)
        self.due = ctx.due

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult) -> None:
        if self.due(epoch, self.item.every):
            for name, conv in self.layers.items():
                self.sink.image(f"kernels/{name}", kernel_grid(conv.weight, self.item.max_channels), epoch)
                self.sink.image(f"kernels_split/{name}", kernel_split_grid(conv.weight, self.item.max_channels), epoch)


@VISUALS.register("kernels")
def kernels(item: KernelsVisual, model: nn.Module, sample: torch.Tensor) -> Observer | None:
    return ConvKernels(item) if conv_layers(model) else None
