"""Ending a run on purpose before its last epoch: `train.early_stop` and `train.max_minutes`.

Either ends the run FINISHED (the test pass and the final model still happen) with the reason
in the `launch.stop_reason` tag (trainlib.tags.STOP_REASON). Their state travels in the checkpoint, so a resumed run
keeps counting where it stopped.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from trainlib.config import EarlyStopConfig, TrainOptions


@dataclass
class EarlyStopping:
    """Stop after `patience` epochs in which the metric did not beat its best by more than `min_delta`."""

    config: EarlyStopConfig
    best: float = math.nan
    best_epoch: int = 0
    bad_epochs: int = 0

    @property
    def mode(self) -> str:
        if self.config.mode != "auto":
            return self.config.mode
        return "max" if self.config.metric.endswith("acc") else "min"

    def improved(self, value: float) -> bool:
        if math.isnan(self.best):
            return not math.isnan(value)
        margin = value - self.best if self.mode == "max" else self.best - value
        return margin > self.config.min_delta

    def update(self, epoch: int, metrics: dict[str, float]) -> str | None:
        """Record the epoch's metrics; the reason to stop, or None (also on an epoch that did not validate:
        with valid_every > 1, patience counts validated epochs)."""
        if self.config.metric not in metrics:
            return None
        value = metrics[self.config.metric]
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return None
        self.bad_epochs += 1
        if self.bad_epochs < self.config.patience:
            return None
        return (f"early_stop: {self.config.metric} did not improve by more than {self.config.min_delta:g} "
                f"for {self.bad_epochs} epochs (best {self.best:.4g} at epoch {self.best_epoch})")

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]


@dataclass
class TimeBudget:
    """`train.max_minutes` of training-loop time, summed over the run's sessions (a resume continues it)."""

    minutes: float | None
    spent_s: float = 0.0  # before this session
    started: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float | None:
        """The time.monotonic() at which this session must stop; None without a budget."""
        return None if self.minutes is None else self.started + self.minutes * 60 - self.spent_s

    def elapsed_s(self) -> float:
        return self.spent_s + time.monotonic() - self.started

    def reason(self) -> str | None:
        if self.minutes is None or self.elapsed_s() < self.minutes * 60:
            return None
        return f"max_minutes: the time budget of {self.minutes:g} min is spent ({self.elapsed_s() / 60:.2f} min)"


class Stops:
    """A run's reasons to stop early, checked after each epoch; `state` resumes them from a checkpoint."""

    def __init__(self, train: TrainOptions, state: dict[str, Any] | None = None):
        state = state or {}
        self.early = EarlyStopping(train.early_stop) if train.early_stop else None
        if self.early and state.get("early_stop"):
            self.early.load_state_dict(state["early_stop"])
        self.budget = TimeBudget(train.max_minutes, state.get("train_seconds", 0.0))

    def start(self) -> None:
        """The budget's clock starts now (setup and the tracking store's opening are not training)."""
        self.budget.started = time.monotonic()

    @property
    def deadline(self) -> float | None:
        return self.budget.deadline

    def after_epoch(self, epoch: int, metrics: dict[str, float]) -> str | None:
        early = self.early.update(epoch, metrics) if self.early else None
        return self.budget.reason() or early

    def state_dict(self) -> dict[str, Any]:
        return {"early_stop": self.early.state_dict() if self.early else {},
                "train_seconds": self.budget.elapsed_s()}
