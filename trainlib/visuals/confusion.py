"""The validation confusion matrix as a picture each logged eval (seed 4.5).

Drawn with PIL (a few ms) rather than matplotlib (~0.3-0.5 s a figure, most of it layout):
at every logged epoch that alone would exceed the visuals' 5% budget. Cells are shaded by
the row-normalized rate (recall on the diagonal) and show the counts.
"""
from __future__ import annotations

import torch

from torch import nn

from trainlib.engine import EvalResult
from trainlib.metrics import confusion_matrix
from trainlib.observers import FitContext, Observer, due
from trainlib.visuals.catalog import MLFLOW, TENSORBOARD, VISUALS
from trainlib.visuals.items import EveryEpochs
from trainlib.visuals.sink import Sink

CELL = 30  # pixels
FONT_SIZE = 12


def confusion_image(cm: torch.Tensor, class_names: list[str], title: str) -> torch.Tensor:
    """(3, H, W) floats in [0, 1]: rows true class, columns predicted class."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=FONT_SIZE)
    n = len(class_names)
    label_w = max(int(font.getlength(name)) for name in class_names) + 8
    top = 2 * FONT_SIZE + 12
    image = Image.new("RGB", (label_w + n * CELL + 4, top + n * CELL + label_w), "white")
    draw = ImageDraw.Draw(image)
    draw.text((4, 2), title, fill="black", font=font)
    draw.text((label_w, FONT_SIZE + 6), "predicted ->", fill="gray", font=font)
    rates = (cm.float() / cm.sum(1, keepdim=True).clamp(min=1)).tolist()
    for i in range(n):
        draw.text((label_w - 4, top + i * CELL + CELL // 2), class_names[i], fill="black", font=font, anchor="rm")
        for j in range(n):
            x, y, rate = label_w + j * CELL, top + i * CELL, rates[i][j]
            shade = (int(255 - 200 * rate), int(255 - 150 * rate), 255)
            draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=shade, outline="lightgray")
            draw.text((x + CELL // 2, y + CELL // 2), str(int(cm[i, j])), font=font, anchor="mm",
                      fill="white" if rate > 0.5 else "black")
    for j, name in enumerate(class_names):  # predicted-class names under the columns, rotated
        label = Image.new("RGB", (label_w, CELL), "white")
        ImageDraw.Draw(label).text((label_w - 4, CELL // 2), name, fill="black", font=font, anchor="rm")
        image.paste(label.rotate(90, expand=True), (label_w + j * CELL, top + n * CELL))
    return torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(
        image.height, image.width, 3).permute(2, 0, 1).float().div_(255)


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
            title = f"valid, epoch {epoch}: acc {valid.acc:.2%} (rows: true class)"
            self.sink.image("confusion_matrix/valid", confusion_image(cm, self.class_names, title), epoch, artifact=True)


@VISUALS.register("confusion", EveryEpochs, writes=(TENSORBOARD, MLFLOW), summary="validation confusion matrix figure")
def confusion(item: EveryEpochs, model: nn.Module, sample: torch.Tensor) -> Observer:
    return ConfusionFigure(item)
