"""Loss registry (seed chapter 3.1): all 17 of the tutorial's losses, each driving a classifier.

Every entry builds a module called as ``loss(logits, target)``: `logits` (B, K) and
`target` either class ids (B,) or, after batch-level mixup/cutmix, class probabilities
(B, K). Entries with ``soft_targets=False`` accept class ids only (the config refuses
mixup/cutmix with them). Each entry's docstring says how it turns the classification
problem into the loss's own inputs (its adapter).
"""
from __future__ import annotations

from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from trainlib.errors import ConfigError
from trainlib.signatures import LOSSES
from trainlib.validation import NonNegativeFloat, PositiveFloat, Probability


def list_losses() -> list[str]:
    return LOSSES.names()


def build_loss(spec: dict, num_classes: int) -> nn.Module:
    return LOSSES.build(spec, num_classes)


def target_probs(target: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """Class ids -> (smoothed) one-hot rows; probability rows pass through (then smoothed)."""
    if target.dim() == 1:
        target = F.one_hot(target, num_classes).float()
    return target * (1.0 - smoothing) + smoothing / num_classes if smoothing else target


class Adapted(nn.Module):
    """A torch loss fed from (logits, target) through `prepare`, which builds the loss's own inputs."""

    def __init__(self, loss: nn.Module, prepare: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]):
        super().__init__()
        self.loss = loss  # a submodule, so its buffers (weights) move with .to(device)
        self.prepare = prepare

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(*self.prepare(logits, target))


def _class_weights(weights: list[float] | None, num_classes: int) -> torch.Tensor | None:
    if weights is None:
        return None
    if len(weights) != num_classes:
        raise ConfigError(f"loss.class_weights has {len(weights)} values but the data has {num_classes} classes")
    return torch.tensor(weights, dtype=torch.float32)


def _on_probs(loss: nn.Module, num_classes: int, smoothing: float,
              squash: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
              encode: Callable[[torch.Tensor], torch.Tensor] = lambda t: t) -> Adapted:
    """loss(squash(logits), encode(one-hot or smoothed target))."""
    return Adapted(loss, lambda logits, t: (squash(logits), encode(target_probs(t, num_classes, smoothing))))


def _others(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Mask (B, K): True where the class is not the sample's own."""
    return torch.ones_like(logits, dtype=torch.bool).scatter_(1, ids[:, None], False)


def _signs(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(B, K): +1 at the sample's own class, -1 elsewhere."""
    return torch.where(_others(logits, ids), -1.0, 1.0).to(logits.dtype)


# --- the cross-entropy family -------------------------------------------------------------

@LOSSES.register("cross_entropy")
def cross_entropy(num_classes: int, *, label_smoothing: Probability = 0.0,
                  class_weights: list[NonNegativeFloat] | None = None, ignore_index: int = -100) -> nn.Module:
    """nn.CrossEntropyLoss on logits and class ids or probabilities (label smoothing, class weights; samples of
    class ignore_index add nothing)."""
    return nn.CrossEntropyLoss(weight=_class_weights(class_weights, num_classes), label_smoothing=label_smoothing,
                               ignore_index=ignore_index)


@LOSSES.register("nll", soft_targets=False)
def nll(num_classes: int, *, class_weights: list[NonNegativeFloat] | None = None,
        ignore_index: int = -100) -> nn.Module:
    """nn.NLLLoss on log_softmax(logits) and class ids (together: cross-entropy; class ignore_index adds nothing)."""
    weight = _class_weights(class_weights, num_classes)
    return Adapted(nn.NLLLoss(weight=weight, ignore_index=ignore_index), lambda logits, t: (F.log_softmax(logits, 1), t))


@LOSSES.register("kl_div")
def kl_div(num_classes: int, *, label_smoothing: Probability = 0.1) -> nn.Module:
    """nn.KLDivLoss(batchmean) from log_softmax(logits) to the (smoothed) one-hot target distribution."""
    return _on_probs(nn.KLDivLoss(reduction="batchmean"), num_classes, label_smoothing,
                     squash=lambda x: F.log_softmax(x, 1))


@LOSSES.register("poisson_nll")
def poisson_nll(num_classes: int, *, full: bool = False, eps: float = 1e-8) -> nn.Module:
    """nn.PoissonNLLLoss(log_input=True): logits are log-rates, one-hot targets the counts (1 for the true class)."""
    return _on_probs(nn.PoissonNLLLoss(log_input=True, full=full, eps=eps), num_classes, 0.0)


# --- regression losses on one-hot targets ------------------------------------------------

@LOSSES.register("l1")
def l1(num_classes: int, *, label_smoothing: Probability = 0.0) -> nn.Module:
    """nn.L1Loss between softmax(logits) and the (smoothed) one-hot target."""
    return _on_probs(nn.L1Loss(), num_classes, label_smoothing, squash=lambda x: F.softmax(x, 1))


@LOSSES.register("mse")
def mse(num_classes: int, *, label_smoothing: Probability = 0.0) -> nn.Module:
    """nn.MSELoss between softmax(logits) and the (smoothed) one-hot target (the Brier score)."""
    return _on_probs(nn.MSELoss(), num_classes, label_smoothing, squash=lambda x: F.softmax(x, 1))


@LOSSES.register("smooth_l1")
def smooth_l1(num_classes: int, *, beta: NonNegativeFloat = 1.0, label_smoothing: Probability = 0.0) -> nn.Module:
    """nn.SmoothL1Loss(beta) between the logits and the (smoothed) one-hot target."""
    return _on_probs(nn.SmoothL1Loss(beta=beta), num_classes, label_smoothing)


# --- one-vs-rest (multi-label style) losses -----------------------------------------------

@LOSSES.register("bce")
def bce(num_classes: int, *, label_smoothing: Probability = 0.0) -> nn.Module:
    """nn.BCELoss between sigmoid(logits) and the (smoothed) one-hot target: K one-vs-rest problems."""
    return _on_probs(nn.BCELoss(), num_classes, label_smoothing, squash=torch.sigmoid)


@LOSSES.register("bce_with_logits")
def bce_with_logits(num_classes: int, *, label_smoothing: Probability = 0.0,
                    pos_weight: PositiveFloat | None = None) -> nn.Module:
    """nn.BCEWithLogitsLoss on logits and the (smoothed) one-hot target; pos_weight scales the positive term."""
    weight = None if pos_weight is None else torch.full((num_classes,), pos_weight)
    return _on_probs(nn.BCEWithLogitsLoss(pos_weight=weight), num_classes, label_smoothing)


@LOSSES.register("soft_margin")
def soft_margin(num_classes: int, *, label_smoothing: Probability = 0.0) -> nn.Module:
    """nn.SoftMarginLoss on logits and targets 2*one_hot-1 (+1 true class, -1 others): logistic one-vs-rest."""
    return _on_probs(nn.SoftMarginLoss(), num_classes, label_smoothing, encode=lambda t: 2 * t - 1)


@LOSSES.register("multilabel_soft_margin")
def multilabel_soft_margin(num_classes: int, *, label_smoothing: Probability = 0.0) -> nn.Module:
    """nn.MultiLabelSoftMarginLoss on logits with the (smoothed) one-hot target as the label set."""
    return _on_probs(nn.MultiLabelSoftMarginLoss(), num_classes, label_smoothing)


# --- margin losses (class ids only) -------------------------------------------------------

@LOSSES.register("multi_margin", soft_targets=False)
def multi_margin(num_classes: int, *, p: Literal[1, 2] = 1, margin: float = 1.0,
                 class_weights: list[NonNegativeFloat] | None = None) -> nn.Module:
    """nn.MultiMarginLoss on logits and class ids: multi-class hinge, each wrong logit margin below the true one."""
    return nn.MultiMarginLoss(p=p, margin=margin, weight=_class_weights(class_weights, num_classes))


@LOSSES.register("multilabel_margin", soft_targets=False)
def multilabel_margin(num_classes: int) -> nn.Module:
    """nn.MultiLabelMarginLoss with the label set {true class} (target row [y, -1, ...]): hinge at margin 1."""

    def prepare(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.full_like(logits, -1, dtype=torch.long)
        labels[:, 0] = target
        return logits, labels

    return Adapted(nn.MultiLabelMarginLoss(), prepare)


# --- pairwise / embedding losses, as classification ---------------------------------------

@LOSSES.register("margin_ranking", soft_targets=False)
def margin_ranking(num_classes: int, *, margin: float = 1.0) -> nn.Module:
    """nn.MarginRankingLoss ranking the true-class logit (x1) above each other logit (x2), y = 1."""

    def prepare(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mask = _others(logits, target)
        true = logits.gather(1, target[:, None]).expand_as(logits)
        return true[mask], logits[mask], torch.ones_like(logits[mask])

    return Adapted(nn.MarginRankingLoss(margin=margin), prepare)


@LOSSES.register("hinge_embedding", soft_targets=False)
def hinge_embedding(num_classes: int, *, margin: float = 1.0) -> nn.Module:
    """nn.HingeEmbeddingLoss on distances d_k = -log_softmax(logits)_k: y=1 for the true class, -1 for others."""
    return Adapted(nn.HingeEmbeddingLoss(margin=margin),
                   lambda logits, t: (-F.log_softmax(logits, 1), _signs(logits, t)))


@LOSSES.register("cosine_embedding", soft_targets=False)
def cosine_embedding(num_classes: int, *, margin: float = 0.0) -> nn.Module:
    """nn.CosineEmbeddingLoss between the logit vector and each class's one-hot prototype: y=1 own class, -1 others."""

    def prepare(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
        b, k = logits.shape
        prototypes = torch.eye(k, device=logits.device, dtype=logits.dtype)
        return logits.repeat_interleave(k, 0), prototypes.repeat(b, 1), _signs(logits, target).reshape(-1)

    return Adapted(nn.CosineEmbeddingLoss(margin=margin), prepare)


@LOSSES.register("triplet_margin", soft_targets=False)
def triplet_margin(num_classes: int, *, margin: NonNegativeFloat = 1.0, p: PositiveFloat = 2.0) -> nn.Module:
    """nn.TripletMarginLoss: anchor softmax(logits), positive its class's one-hot, negatives the other one-hots."""

    def prepare(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
        prototypes = torch.eye(logits.shape[1], device=logits.device, dtype=logits.dtype)
        rows, negatives = _others(logits, target).nonzero(as_tuple=True)
        return F.softmax(logits, 1)[rows], prototypes[target[rows]], prototypes[negatives]

    return Adapted(nn.TripletMarginLoss(margin=margin, p=p), prepare)
