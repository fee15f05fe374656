"""Loss registry (seed chapter 3.1): each entry builds `loss(logits, target_class_ids)`."""
from __future__ import annotations

from torch import nn

from trainlib.registry import Registry

LOSSES = Registry("loss")


def list_losses() -> list[str]:
    return LOSSES.names()


def build_loss(spec: dict, num_classes: int) -> nn.Module:
    return LOSSES.build(spec, num_classes)


@LOSSES.register("cross_entropy")
def cross_entropy(num_classes: int, *, label_smoothing: float = 0.0) -> nn.Module:
    """nn.CrossEntropyLoss on logits and class ids (optional label smoothing)."""
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
