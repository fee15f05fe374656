"""Base for the visuals of one layer on fixed validation images (feature maps, Grad-CAM)."""
from __future__ import annotations

from trainlib.engine import EvalResult
from trainlib.observers import FitContext, Observer
from trainlib.visual_settings import LayerImages
from trainlib.visuals.images import fixed_samples
from trainlib.visuals.sink import Sink


class LayerVisual(Observer):
    def __init__(self, item: LayerImages, layer: str):
        self.item = item
        self.layer = layer

    def on_fit_start(self, ctx: FitContext) -> None:
        self.sink = Sink(ctx)
        self.model = ctx.model
        self.module = dict(ctx.model.named_modules())[self.layer]
        self.due = ctx.due
        self.images = fixed_samples(ctx.loaders["valid"], self.item.count)[0].to(ctx.device)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult) -> None:
        if self.due(epoch, self.item.every):
            self.draw(epoch)

    def draw(self, epoch: int) -> None:
        raise NotImplementedError
