"""Feature maps of one layer for a few fixed validation images (seed 4.3): a row per image."""
from __future__ import annotations

import torch

from trainlib.config import LayerImages
from trainlib.engine import EvalResult
from trainlib.observers import FitContext, Observer, due
from trainlib.visuals.images import capture, fixed_samples, for_display, grid
from trainlib.visuals.sink import Sink

MAX_MAPS = 16  # channels shown per image


def feature_map_grid(maps: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) activations (or (N, F) features) -> a grid with one row of channels per image."""
    if maps.dim() == 2:
        maps = maps[:, None, None, :]
    maps = maps[:, :MAX_MAPS].float().cpu()
    n, c = maps.shape[:2]
    return grid(for_display(maps.reshape(n * c, 1, *maps.shape[2:])), nrow=c)


class FeatureMaps(Observer):
    def __init__(self, item: LayerImages, layer: str):
        self.item = item
        self.layer = layer

    def on_fit_start(self, ctx: FitContext) -> None:
        self.sink = Sink(ctx)
        self.model = ctx.model
        self.epochs = ctx.epochs
        self.images = fixed_samples(ctx.loaders["valid"].dataset, self.item.count)[0].to(ctx.device)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult) -> None:
        if due(epoch, self.item.every, self.epochs):
            maps = capture(self.model, self.layer, self.images)
            self.sink.image(f"feature_maps/{self.layer}", feature_map_grid(maps), epoch)
