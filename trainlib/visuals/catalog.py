"""Building the visual observers of a run from the config's `visuals` section.

The visuals are described (name, settings, where they write) in `trainlib.visual_settings`,
which the config schema reads; each module of this package attaches its builder there.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from trainlib.visual_settings import MLFLOW, TENSORBOARD, VISUALS

if TYPE_CHECKING:
    import torch
    from torch import nn

    from trainlib.config import TrainConfig
    from trainlib.observers import Observer


def build_visuals(cfg: TrainConfig, model: nn.Module, sample: torch.Tensor) -> dict[str, Observer]:
    """Visual name -> its observer, for every visual the config switches on that can write
    somewhere (TensorBoard, or MLflow for those that are also PNG artifacts)."""
    v = cfg.visuals
    if not v.enabled:
        return {}
    open_to = {TENSORBOARD: cfg.tracking.tensorboard, MLFLOW: cfg.tracking.mlflow}
    observers = {}
    for entry in VISUALS.entries():
        item = getattr(v, entry.name)
        if item.enabled and any(open_to[where] for where in entry.meta["writes"]):
            observer = entry.builder(item, model, sample)
            if observer is not None:
                observers[entry.name] = observer
    return observers
