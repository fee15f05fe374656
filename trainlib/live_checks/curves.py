"""Epoch-level checks on the loss and accuracy curves."""
from __future__ import annotations

import math

from trainlib.live_checks.data_checks import Problem

# a rise smaller than this share of the initial loss is noise, not divergence
MIN_RISE = 0.25


def diverging(loss: float, reference: float, initial: float, factor: float) -> Problem | None:
    """`loss` well above `reference` (the initial loss or the best since)."""
    if not math.isfinite(loss) or loss <= factor * reference or loss - reference <= MIN_RISE * initial:
        return None
    return (f"loss is diverging: {loss:.4g}, up from {reference:.4g} (initial {initial:.4g}); the lr is likely too high",
            {"loss": loss, "reference": reference, "initial": initial})


def not_decreasing(train_losses: list[float], patience: int, min_drop: float) -> Problem | None:
    """After `patience` more epochs the train loss is still within `min_drop` of its first value."""
    if len(train_losses) <= patience:
        return None
    first, best = train_losses[0], min(train_losses)
    if not math.isfinite(first) or best < (1 - min_drop) * first:
        return None
    return (f"train loss is not decreasing: {first:.4f} at epoch 1, best {best:.4f} after {len(train_losses)} epochs; "
            f"the lr may be too low or the model may not learn",
            {"train_losses": [round(v, 5) for v in train_losses]})


def overfitting(train_acc: list[float], valid_acc: list[float], max_gap: float, patience: int) -> Problem | None:
    """Train accuracy ahead of valid accuracy by more than `max_gap`, and the gap has grown."""
    gaps = [t - v for t, v in zip(train_acc, valid_acc) if not math.isnan(v)]  # NaN: an epoch not validated
    if len(gaps) <= patience or gaps[-1] <= max_gap or gaps[-1] <= gaps[-1 - patience]:
        return None
    return (f"train/valid gap is {gaps[-1]:.1%} (train acc {train_acc[-1]:.1%}, valid {valid_acc[-1]:.1%}), "
            f"up from {gaps[-1 - patience]:.1%} {patience} epochs earlier: overfitting",
            {"gaps": [round(g, 4) for g in gaps]})
