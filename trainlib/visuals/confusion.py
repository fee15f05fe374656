"""The confusion matrices as pictures (seed 4.5 draws the valid and the train split's):
- `confusion_matrix/valid` at each logged epoch, from that epoch's validation;
- `confusion_matrix/train` once, when training ends, as the tutorial's `validate(net, train_loader)`
  counts it: the final weights in eval mode over the train loader (its augmentation included);
- `confusion_matrix/train_batches` at each logged epoch: the epoch's training batches as the model
  saw them (augmented, train mode, before each step), no extra pass over the train set.
Under DDP both train ones are rank 0's share of the batches.

Drawn with PIL (a few ms) rather than matplotlib (~0.3-0.5 s a figure, most of it layout):
at every logged epoch that alone would exceed the visuals' 5% budget. Cells are shaded by
the row-normalized rate (recall on the diagonal) and show the counts.
"""
from __future__ import annotations

import torch

from torch import nn

from trainlib.engine import BatchStep, EvalResult, class_ids, forward
from trainlib.metrics import confusion_matrix
from trainlib.observers import FitContext, Observer
from trainlib.visual_settings import EveryEpochs, VISUALS
from trainlib.visuals.images import eval_mode
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
    wants_batches = True

    def __init__(self, item: EveryEpochs):
        self.item = item
        self.train_batches: list[tuple[torch.Tensor, torch.Tensor]] = []  # per batch: (true, predicted), on the device

    def on_fit_start(self, ctx: FitContext) -> None:
        self.sink = Sink(ctx)
        self.class_names = ctx.data.class_names
        self.due = ctx.due
        self.epoch = ctx.start_epoch + 1
        self.counting = self.due(self.epoch, self.item.every)  # decided per epoch, not per batch
        self.model, self.train_loader, self.device = ctx.model, ctx.loaders["train"], ctx.device

    def after_backward(self, step: BatchStep) -> None:
        if self.counting:  # counted once, at the epoch's end: one op a batch here (the argmax)
            self.train_batches.append((class_ids(step.targets), step.logits.argmax(1)))

    def _counts(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        true, predicted = (torch.cat(column) for column in zip(*batches))
        return confusion_matrix(predicted, true, len(self.class_names)).cpu()

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult | None) -> None:
        self.epoch = epoch + 1
        self.counting = self.due(self.epoch, self.item.every)
        if not self.due(epoch, self.item.every):
            return
        if valid is not None:  # valid_every: not validated this epoch
            cm = confusion_matrix(valid.preds, valid.targets, len(self.class_names))
            self.draw("valid", cm, epoch, f"valid, epoch {epoch}")
        if self.train_batches:
            self.draw("train_batches", self._counts(self.train_batches), epoch,
                      f"train batches of epoch {epoch} (augmented, train mode, before each step)")
            self.train_batches = []

    def on_fit_end(self, epoch: int, final: dict[str, float]) -> None:
        with eval_mode(self.model), torch.no_grad():
            batches = [(class_ids(y.to(self.device)), forward(self.model, x.to(self.device)).argmax(1))
                       for x, y in self.train_loader]
        if batches:
            self.draw("train", self._counts(batches), epoch, "train after training (final weights, eval mode)")

    def draw(self, split: str, cm: torch.Tensor, epoch: int, what: str) -> None:
        acc = float(cm.diag().sum() / cm.sum().clamp(min=1))
        title = f"{what}: acc {acc:.2%} (rows: true class)"
        self.sink.image(f"confusion_matrix/{split}", confusion_image(cm, self.class_names, title), epoch, artifact=True)


@VISUALS.register("confusion")
def confusion(item: EveryEpochs, model: nn.Module, sample: torch.Tensor) -> Observer:
    return ConfusionFigure(item)
