"""LR-schedule registry (seed chapter 3.4).

Each entry builds an `LRSchedule`: the torch scheduler plus when it steps (after every
batch or every epoch) and, for ReduceLROnPlateau, which validation metric drives it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from trainlib.registry import Registry

SCHEDULERS = Registry("scheduler")


def list_schedulers() -> list[str]:
    return SCHEDULERS.names()


@dataclass
class LRSchedule:
    scheduler: torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau
    interval: str = "epoch"  # "epoch" or "step"
    monitor: str | None = None  # metric name for plateau schedules

    def after_batch(self) -> None:
        if self.interval == "step":
            self.scheduler.step()

    def after_epoch(self, metrics: dict[str, float]) -> None:
        if self.interval != "epoch":
            return
        if self.monitor is None:
            self.scheduler.step()
        else:
            self.scheduler.step(metrics[self.monitor])

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)


def build_scheduler(spec: dict, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> LRSchedule:
    return SCHEDULERS.build(spec, optimizer, epochs, steps_per_epoch)


@SCHEDULERS.register("constant")
def constant(optimizer, epochs: int, steps_per_epoch: int) -> LRSchedule:
    """Keep the optimizer's lr fixed."""
    return LRSchedule(torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0))


@SCHEDULERS.register("step")
def step(optimizer, epochs: int, steps_per_epoch: int, *, step_size: int = 10, gamma: float = 0.1) -> LRSchedule:
    """StepLR: multiply the lr by gamma every step_size epochs."""
    return LRSchedule(torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma))


@SCHEDULERS.register("cosine")
def cosine(optimizer, epochs: int, steps_per_epoch: int, *, eta_min: float = 0.0) -> LRSchedule:
    """CosineAnnealingLR over the whole run (T_max = epochs)."""
    return LRSchedule(torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=eta_min))


@SCHEDULERS.register("plateau")
def plateau(optimizer, epochs: int, steps_per_epoch: int, *, monitor: str = "valid/loss",
            factor: float = 0.1, patience: int = 3, threshold: float = 1e-4, min_lr: float = 0.0) -> LRSchedule:
    """ReduceLROnPlateau on a validation metric (min for losses, max for accuracies)."""
    mode = "min" if monitor.endswith("loss") else "max"
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode=mode, factor=factor, patience=patience, threshold=threshold, min_lr=min_lr)
    return LRSchedule(scheduler, monitor=monitor)
