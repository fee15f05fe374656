"""The validation confusion matrix as a figure each logged eval (seed 4.5)."""
from __future__ import annotations

from trainlib.config import EveryEpochs
from trainlib.engine import EvalResult
from trainlib.metrics import confusion_figure, confusion_matrix
from trainlib.observers import FitContext, Observer, due
from trainlib.visuals.sink import Sink


class ConfusionFigure(Observer):
    def __init__(self, item: EveryEpochs):
        self.item = item

    def on_fit_start(self, ctx: FitContext) -> None:
        self.sink = Sink(ctx)
        self.class_names = ctx.data.class_names
        self.epochs = ctx.epochs

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult) -> None:
        if due(epoch, self.item.every, self.epochs):
            cm = confusion_matrix(valid.preds, valid.targets, len(self.class_names))
            figure = confusion_figure(cm, self.class_names, f"valid confusion matrix, epoch {epoch} (acc {valid.acc:.2%})")
            self.sink.figure("confusion_matrix/valid", figure, epoch, artifact=True)
