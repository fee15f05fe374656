"""A precision-recall curve per class on the validation set."""
from __future__ import annotations

from trainlib.config import EveryEpochs
from trainlib.engine import EvalResult
from trainlib.observers import FitContext, Observer, due


class PrCurves(Observer):
    def __init__(self, item: EveryEpochs):
        self.item = item

    def on_fit_start(self, ctx: FitContext) -> None:
        self.writer = ctx.writer
        self.class_names = ctx.data.class_names
        self.epochs = ctx.epochs

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult) -> None:
        if not due(epoch, self.item.every, self.epochs):
            return
        probs = valid.logits.softmax(1).nan_to_num(0.0)
        for index, name in enumerate(self.class_names):
            self.writer.add_pr_curve(f"pr_curve/{name}", valid.targets == index, probs[:, index], epoch)
