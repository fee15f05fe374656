"""Observers: code that watches a run (visuals, diagnosis, the Ray reporter) without being part of the loop.

`trainlib.run` assembles them (from `config.visuals` / `config.diagnose`, then the caller's) and calls, in order:
`on_fit_start` once the run is open, `after_backward` for every training batch (after
backward, before the optimizer step; only when some observer asks for batches),
`epoch_metrics` to add to the epoch's metrics before they are logged, `on_epoch_end` after
they are logged and the epoch's checkpoint is saved, and `on_fit_end` after the test pass.
An observer may raise `RunStopped` to end the run with a reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
from torch import nn

from trainlib.data.datasets import ImageSplits
from trainlib.engine import BatchHook, BatchStep, EvalResult
from trainlib.tracking import Tracker

if TYPE_CHECKING:
    from trainlib.config import TrainConfig


@dataclass
class FitContext:
    """What observers may look at (and log to) during a run."""

    config: TrainConfig
    model: nn.Module
    device: torch.device
    data: ImageSplits
    loaders: dict[str, Any]
    optimizer: torch.optim.Optimizer
    tracker: Tracker
    run_dir: Path
    echo: Callable[[str], None]
    start_epoch: int = 0
    run_id: str = ""

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @property
    def epochs(self) -> int:
        return self.config.epochs

    @property
    def writer(self) -> Any | None:
        return self.tracker.summary_writer()

    def due(self, epoch: int, every: int) -> bool:
        """Whether a visual logged every `every` epochs draws at `epoch`: also at the last epoch and at
        `visuals.at_epochs` (where a sweep's scheduler judges trials)."""
        return due(epoch, every, self.epochs) or epoch in self.config.visuals.at_epochs


class Observer:
    """Base class: every hook does nothing. Set `wants_batches` to receive `after_backward`."""

    wants_batches = False

    def on_fit_start(self, ctx: FitContext) -> None:
        pass

    def after_backward(self, step: BatchStep) -> None:
        pass

    def epoch_metrics(self) -> dict[str, float]:
        return {}

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult | None) -> None:
        """After an epoch; `valid` is None (and metrics hold no valid/*) on an epoch `valid_every` skips."""
        pass

    def on_fit_end(self, epoch: int, final: dict[str, float]) -> None:
        pass


class Observers:
    """Calls each observer in turn."""

    def __init__(self, observers: Sequence[Observer]):
        self.observers = list(observers)
        self._batch_observers = [o for o in self.observers if o.wants_batches]

    @property
    def batch_hook(self) -> BatchHook | None:
        """None when no observer wants batches, so the training loop pays nothing."""
        return self._after_backward if self._batch_observers else None

    def _after_backward(self, step: BatchStep) -> None:
        for observer in self._batch_observers:
            observer.after_backward(step)

    def on_fit_start(self, ctx: FitContext) -> None:
        for observer in self.observers:
            observer.on_fit_start(ctx)

    def epoch_metrics(self) -> dict[str, float]:
        return {k: v for observer in self.observers for k, v in observer.epoch_metrics().items()}

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult | None) -> None:
        for observer in self.observers:
            observer.on_epoch_end(epoch, metrics, valid)

    def on_fit_end(self, epoch: int, final: dict[str, float]) -> None:
        for observer in self.observers:
            observer.on_fit_end(epoch, final)


def due(epoch: int, every: int, last: int) -> bool:
    """Every `every`-th epoch, and the last epoch."""
    return epoch % every == 0 or epoch == last


@dataclass
class EpochReport:
    """An epoch as an EpochObserver sees it, once its metrics are logged and its checkpoint saved."""

    epoch: int
    metrics: dict[str, float]
    checkpoint_dir: Path
    run_id: str


class EpochObserver(Observer):
    """An observer made of a function of each epoch's EpochReport (a probe in a test, a bench's timer)."""

    def __init__(self, fn: Callable[[EpochReport], None]):
        self.fn = fn

    def on_fit_start(self, ctx: FitContext) -> None:
        self.checkpoint_dir = ctx.checkpoint_dir
        self.run_id = ctx.run_id

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult) -> None:
        self.fn(EpochReport(epoch, metrics, self.checkpoint_dir, self.run_id))
