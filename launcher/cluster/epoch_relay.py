"""A trainlib observer that passes each epoch on to Ray (Tune or Train) as it ends.

The last epoch is held back and sent with the test metrics once the run has finished
(`finish`), so a scheduler's stop decision on it cannot cut the test evaluation short.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

from trainlib.observers import EpochObserver, EpochReport

Send = Callable[[dict[str, Any], Path], None]  # (metrics, the run's checkpoint folder)


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite: the trial fails (and may be retried)."""


class EpochRelay(EpochObserver):
    """`fail_on_nonfinite`: a NaN/Inf train loss raises NonFiniteLoss before the epoch is sent,
    so the last checkpoint Ray holds is the last finite one. The caller sends the held-back
    last epoch with `finish(final)` once `run` has returned (its tracking run is closed)."""

    def __init__(self, epochs: int, send: Send, fail_on_nonfinite: bool = False):
        super().__init__(self.relay)
        self.epochs = epochs
        self.send = send
        self.fail_on_nonfinite = fail_on_nonfinite
        self.pending: tuple[dict[str, Any], Path] | None = None
        self.last = None  # the last EpochReport seen

    def relay(self, report: EpochReport) -> None:
        loss = report.metrics["train/loss"]
        if self.fail_on_nonfinite and not math.isfinite(loss):
            raise NonFiniteLoss(f"train loss is {loss} at epoch {report.epoch}")
        self.last = report
        metrics = {**report.metrics, "epoch": report.epoch, "run_id": report.run_id}
        if report.epoch < self.epochs:
            self.send(metrics, report.checkpoint_dir)
        else:
            self.pending = (metrics, report.checkpoint_dir)

    def finish(self, final: dict[str, float]) -> None:
        if self.pending is not None:
            metrics, folder = self.pending
            self.pending = None
            self.send({**metrics, **final}, folder)
