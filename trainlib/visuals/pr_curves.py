"""A precision-recall curve per class on the validation set.

The counts are computed for all classes at once in torch and written raw; they are what
tensorboardX's `add_pr_curve` computes one class at a time in numpy (several times slower).
"""
from __future__ import annotations

import torch
from torch import nn

from trainlib.engine import EvalResult
from trainlib.observers import FitContext, Observer
from trainlib.visual_settings import EveryEpochs, VISUALS

THRESHOLDS = 127  # tensorboardX's default
MIN_COUNT = 1e-7  # keeps precision and recall finite where nothing is predicted / present


def pr_counts(probs: torch.Tensor, targets: torch.Tensor, thresholds: int = THRESHOLDS) -> dict[str, torch.Tensor]:
    """Per class (rows) and threshold (columns, ascending): tp, fp, tn, fn, precision, recall."""
    classes = probs.shape[1]
    buckets = (probs.T.double() * (thresholds - 1)).floor().long().clamp(0, thresholds - 1)
    positive = (targets[None, :] == torch.arange(classes)[:, None]).double()
    tp = torch.zeros(classes, thresholds, dtype=torch.float64).scatter_add_(1, buckets, positive)
    fp = torch.zeros(classes, thresholds, dtype=torch.float64).scatter_add_(1, buckets, 1 - positive)
    tp, fp = (b.flip(1).cumsum(1).flip(1) for b in (tp, fp))  # counts at or above each threshold
    tn, fn = fp[:, :1] - fp, tp[:, :1] - tp
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "precision": tp / (tp + fp).clamp(min=MIN_COUNT), "recall": tp / (tp + fn).clamp(min=MIN_COUNT)}


class PrCurves(Observer):
    def __init__(self, item: EveryEpochs):
        self.item = item

    def on_fit_start(self, ctx: FitContext) -> None:
        self.writer = ctx.writer
        self.class_names = ctx.data.class_names
        self.due = ctx.due

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult) -> None:
        if not self.due(epoch, self.item.every) or valid is None:  # valid_every: not validated this epoch
            return
        probs = valid.logits.float().softmax(1).nan_to_num(0.0).cpu()
        counts = {k: v.numpy() for k, v in pr_counts(probs, valid.targets.cpu()).items()}
        for index, name in enumerate(self.class_names):
            self.writer.add_pr_curve_raw(f"pr_curve/{name}", *(counts[k][index] for k in counts),
                                         global_step=epoch, num_thresholds=THRESHOLDS)


@VISUALS.register("pr_curves")
def pr_curves(item: EveryEpochs, model: nn.Module, sample: torch.Tensor) -> Observer:
    return PrCurves(item)
