"""A grid of the augmented training inputs of the epoch's first batch: what the model really sees."""
from __future__ import annotations

import torch
from torch import nn

from trainlib.engine import BatchStep, EvalResult
from trainlib.observers import FitContext, Observer
from trainlib.visual_settings import ImageGrid, VISUALS
from trainlib.visuals.images import for_display, grid
from trainlib.visuals.sink import Sink


class InputsGrid(Observer):
    wants_batches = True

    def __init__(self, item: ImageGrid):
        self.item = item

    def on_fit_start(self, ctx: FitContext) -> None:
        self.sink = Sink(ctx)
        self.due = ctx.due
        self.epoch = ctx.start_epoch + 1

    def after_backward(self, step: BatchStep) -> None:
        if step.index == 0 and self.due(self.epoch, self.item.every):
            images = for_display(step.inputs.flatten(0, -4)[:self.item.count])  # crops as images
            self.sink.image("inputs/train", grid(images), self.epoch, artifact=True)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult) -> None:
        self.epoch = epoch + 1


@VISUALS.register("inputs")
def inputs(item: ImageGrid, model: nn.Module, sample: torch.Tensor) -> Observer:
    return InputsGrid(item)
