"""The embedding projector: penultimate features (the output layer's input) of fixed validation
images, with their class names and thumbnails, written once at the end of the run."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trainlib.observers import FitContext, Observer
from trainlib.visual_settings import EmbeddingVisual, VISUALS
from trainlib.visuals.images import capture, fixed_samples, for_display


class Embedding(Observer):
    def __init__(self, item: EmbeddingVisual, head: str):
        self.item = item
        self.head = head

    def on_fit_start(self, ctx: FitContext) -> None:
        self.ctx = ctx

    def on_fit_end(self, epoch: int, final: dict[str, float]) -> None:
        ctx = self.ctx
        x, y = fixed_samples(ctx.loaders["valid"], self.item.count)
        features = capture(ctx.model, self.head, x.to(ctx.device), side="input").flatten(1).float().cpu()
        labels = [ctx.data.class_names[int(i)] for i in y]
        # numpy, not torch: tensorboardX writes the matrix element by element with .item(). Its sprite
        # pads a grid that is not square with uninitialised memory (rows the projector never shows),
        # whose garbage would print overflow warnings.
        with np.errstate(over="ignore", invalid="ignore"):
            ctx.writer.add_embedding(features.numpy(), metadata=labels, label_img=for_display(x), global_step=epoch,
                                     tag="penultimate")


@VISUALS.register("embedding")
def embedding(item: EmbeddingVisual, model: nn.Module, sample: torch.Tensor) -> Observer | None:
    """The projector of the output layer's input (the last linear layer): none without one."""
    heads = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return Embedding(item, heads[-1]) if heads else None
