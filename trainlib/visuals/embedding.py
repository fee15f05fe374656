"""The embedding projector: penultimate features (the output layer's input) of fixed validation
images, with their class names and thumbnails, written once at the end of the run."""
from __future__ import annotations

from trainlib.config import EmbeddingVisual
from trainlib.observers import FitContext, Observer
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
        # numpy, not torch: tensorboardX writes the matrix element by element with .item()
        ctx.writer.add_embedding(features.numpy(), metadata=labels, label_img=for_display(x), global_step=epoch,
                                 tag="penultimate")
