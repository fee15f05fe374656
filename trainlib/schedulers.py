"""LR-schedule registry (seed chapter 3.4).

Each entry builds an `LRSchedule`: the torch scheduler plus when it steps (after every
batch: "step", or every epoch: "epoch") and, for ReduceLROnPlateau, which validation
metric drives it. Every schedule also takes `warmup_epochs` (fractional allowed): a
linear warmup from `warmup_start` x lr to the schedule's own lr over that many epochs,
applied per batch as a factor on top of whatever the schedule sets, so it composes with
all of them (plateau included: the schedule itself never sees the factor).
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, Literal

import torch
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from trainlib.compat import TORCH_LAST_LR, torch_scheduler_parts
from trainlib.errors import ConfigError
from trainlib.signatures import SCHEDULERS
from trainlib.validation import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability

LR_POINTS_PER_EPOCH = 20  # at most this many `lr/step` points logged per epoch
# torch LR-scheduler attributes holding one entry per param group (extended by add_param_group)
PER_GROUP_ATTRS = ("base_lrs", TORCH_LAST_LR, "lr_lambdas", "min_lrs", "max_lrs", "base_momentums", "max_momentums")
# Every name under which torch's optimizers and schedulers, and LRSchedule, keep a learning rate.
LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr", "base_lrs", TORCH_LAST_LR, "min_lrs", "max_lrs", "own_lrs")


def _shared(*, warmup_epochs: NonNegativeFloat = 0.0, warmup_start: Probability = 0.1) -> None:
    """warmup_epochs: linear warmup length (0: none); warmup_start: the lr factor it starts from."""


SCHEDULERS.share(_shared)


def list_schedulers() -> list[str]:
    return SCHEDULERS.names()


class LRSchedule:
    """A torch LR scheduler stepped at its interval, with an optional linear warmup factor on top."""

    def __init__(self, scheduler: LRScheduler | ReduceLROnPlateau, interval: str = "epoch",
                 monitor: str | None = None):
        self.scheduler = scheduler
        self.interval = interval  # "epoch" or "step"
        self.monitor = monitor  # metric name for plateau schedules
        self.optimizer = scheduler.optimizer
        self.warmup_steps = 0
        self.warmup_start = 1.0
        self.steps = 0  # batches seen over the whole run
        self.log_every = 1
        self.step_lrs: list[tuple[int, float]] = []  # (global step, lr) since the last `pop_step_lrs`
        self._own_lrs = [g["lr"] for g in self.optimizer.param_groups]  # what the scheduler set

    def with_warmup(self, steps: int, start: float, steps_per_epoch: int) -> LRSchedule:
        self.warmup_steps, self.warmup_start = steps, start
        self.log_every = max(1, steps_per_epoch // LR_POINTS_PER_EPOCH)
        self._apply_factor()
        return self

    @property
    def changes_per_step(self) -> bool:
        return self.interval == "step" or self.steps < self.warmup_steps

    def after_batch(self) -> None:
        per_step = self.changes_per_step
        self.steps += 1
        if self.interval == "step":
            self._step_scheduler()
        elif self.steps <= self.warmup_steps:
            self._apply_factor()
        if per_step and self.steps % self.log_every == 0:
            self.step_lrs.append((self.steps, self.optimizer.param_groups[0]["lr"]))

    def after_epoch(self, metrics: dict[str, float]) -> None:
        if self.interval != "epoch":
            return
        if self.monitor is None:
            self._step_scheduler()
        elif self.monitor in metrics:  # valid_every > 1: plateau counts validated epochs
            self._step_scheduler(metrics[self.monitor])

    def add_param_group(self, group: dict) -> None:
        """`optimizer.add_param_group` mid-run (finetune's unfreeze), with this schedule kept in step.

        The group takes group 0's current settings, its lr values rescaled by the ratio of the
        two groups' `lr_mult` (default 1), so it joins the schedule where the others are now;
        the torch scheduler's per-group lists (base_lrs, lr_lambdas, ...) get a matching entry.
        """
        ref = self.optimizer.param_groups[0]
        scale = group.get("lr_mult", 1.0) / ref.get("lr_mult", 1.0)
        for key, value in ref.items():
            if key not in ("params", "name", "lr_mult"):
                group.setdefault(key, LRSchedule.rescaled(value, scale, key))
        self.optimizer.add_param_group(group)
        for scheduler in torch_scheduler_parts(self.scheduler):
            for attr in PER_GROUP_ATTRS:
                values = getattr(scheduler, attr, None)
                if isinstance(values, list) and len(values) == len(self.optimizer.param_groups) - 1:
                    values.append(LRSchedule.rescaled(values[0], scale, attr))
        self._own_lrs.append(self._own_lrs[0] * scale)

    @staticmethod
    def rescaled(value: Any, ratio: float, key: Any = None) -> Any:
        """`value` (found under `key`) with every learning rate in it times `ratio`: numbers, or lists
        of numbers, under an LR_KEYS name, in nested dicts and lists; all else (momenta, lambdas,
        lr_mult) as is. For a group joining mid-run (finetune's unfreeze) and for a new lr put into
        another trial's checkpoint (PBT), so a schedule's progress and group multipliers carry over."""
        if key in LR_KEYS:
            if isinstance(value, list):
                return [LRSchedule.rescaled(v, ratio, key) for v in value]
            return value * ratio if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        if isinstance(value, dict):
            return {k: LRSchedule.rescaled(v, ratio, k) for k, v in value.items()}
        if isinstance(value, list):
            return [LRSchedule.rescaled(v, ratio) for v in value]
        return value

    def pop_step_lrs(self) -> list[tuple[int, float]]:
        points, self.step_lrs = self.step_lrs, []
        return points

    def _step_scheduler(self, *metric: float) -> None:
        for group, lr in zip(self.optimizer.param_groups, self._own_lrs):
            group["lr"] = lr  # the scheduler continues from its own lr, not the warmed-up one
        self.scheduler.step(*metric)
        self._own_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self._apply_factor()

    def _apply_factor(self) -> None:
        factor = self.warmup_factor()
        for group, lr in zip(self.optimizer.param_groups, self._own_lrs):
            group["lr"] = lr * factor

    def warmup_factor(self) -> float:
        if self.steps >= self.warmup_steps:
            return 1.0
        return self.warmup_start + (1.0 - self.warmup_start) * self.steps / self.warmup_steps

    def state_dict(self) -> dict:
        return {"scheduler": self.scheduler.state_dict(), "steps": self.steps, "own_lrs": self._own_lrs}

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state["scheduler"])
        self.steps, self._own_lrs = state["steps"], state["own_lrs"]
        self._apply_factor()


def build_scheduler(spec: dict, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int) -> LRSchedule:
    warmup = SCHEDULERS.shared_values(spec)
    schedule = SCHEDULERS.build(spec, optimizer, epochs, steps_per_epoch)
    steps = round(warmup["warmup_epochs"] * steps_per_epoch)
    return schedule.with_warmup(steps, warmup["warmup_start"], steps_per_epoch)


def _group_lrs(optimizer: torch.optim.Optimizer, factor: float = 1.0) -> list[float]:
    """Each parameter group's configured lr (x factor), so group LR multipliers carry over."""
    return [g["lr"] * factor for g in optimizer.param_groups]


def _at_least_one(steps: float) -> int:
    return max(1, round(steps))


@SCHEDULERS.register("constant")
def constant(optimizer, epochs: int, steps_per_epoch: int) -> LRSchedule:
    """Keep the optimizer's lr fixed."""
    return LRSchedule(torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0))


@SCHEDULERS.register("step")
def step(optimizer, epochs: int, steps_per_epoch: int, *, step_size: PositiveInt = 10,
         gamma: PositiveFloat = 0.1) -> LRSchedule:
    """StepLR: multiply the lr by gamma every step_size epochs."""
    return LRSchedule(torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma))


@SCHEDULERS.register("multistep")
def multistep(optimizer, epochs: int, steps_per_epoch: int, *, milestones: list[PositiveInt] = [8, 12],
              gamma: PositiveFloat = 0.1) -> LRSchedule:
    """MultiStepLR: multiply the lr by gamma after each milestone epoch."""
    return LRSchedule(torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=gamma))


@SCHEDULERS.register("exponential")
def exponential(optimizer, epochs: int, steps_per_epoch: int, *, gamma: PositiveFloat = 0.9) -> LRSchedule:
    """ExponentialLR: multiply the lr by gamma every epoch."""
    return LRSchedule(torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma))


@SCHEDULERS.register("cosine")
def cosine(optimizer, epochs: int, steps_per_epoch: int, *, eta_min: NonNegativeFloat = 0.0) -> LRSchedule:
    """CosineAnnealingLR over the whole run (T_max = epochs), stepped per epoch."""
    return LRSchedule(torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=eta_min))


@SCHEDULERS.register("plateau")
def plateau(optimizer, epochs: int, steps_per_epoch: int, *, monitor: Literal["valid/loss", "valid/acc"] = "valid/loss",
            factor: Probability = 0.1, patience: NonNegativeInt = 3, threshold: NonNegativeFloat = 1e-4,
            min_lr: NonNegativeFloat = 0.0) -> LRSchedule:
    """ReduceLROnPlateau on a validation metric (min for the loss, max for the accuracy)."""
    mode = "min" if monitor.endswith("loss") else "max"
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode=mode, factor=factor, patience=patience, threshold=threshold, min_lr=min_lr)
    return LRSchedule(scheduler, monitor=monitor)


def _linear_decay(epoch: int, epochs: int) -> float:
    return max(0.0, 1.0 - epoch / epochs)


def _inverse_sqrt(epoch: int, epochs: int) -> float:
    return 1.0 / math.sqrt(1.0 + epoch)


def _exp_095(epoch: int, epochs: int) -> float:
    return 0.95 ** epoch


# Named lambdas for LambdaLR: factor of the initial lr at each epoch (never eval'd from strings).
LAMBDAS: dict[str, Callable[[int, int], float]] = {
    "linear_decay": _linear_decay,
    "inverse_sqrt": _inverse_sqrt,
    "exp_095": _exp_095,
}
LambdaName = Literal[tuple(LAMBDAS)]


@SCHEDULERS.register("lambda")
def lambda_(optimizer, epochs: int, steps_per_epoch: int, *, fn: LambdaName = "linear_decay") -> LRSchedule:
    """LambdaLR, named factor per epoch: linear_decay (1 - e/epochs), inverse_sqrt (1/sqrt(1+e)), exp_095 (0.95^e)."""
    return LRSchedule(torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(LAMBDAS[fn], epochs=epochs)))


@SCHEDULERS.register("onecycle")
def onecycle(optimizer, epochs: int, steps_per_epoch: int, *, pct_start: Probability = 0.3,
             anneal_strategy: Literal["cos", "linear"] = "cos", div_factor: PositiveFloat = 25.0,
             final_div_factor: PositiveFloat = 1e4, three_phase: bool = False,
             cycle_momentum: bool = False) -> LRSchedule:
    """OneCycleLR per batch peaking at the optimizer's lr (start lr/div_factor, end lr/div_factor/final_div_factor)."""
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=_group_lrs(optimizer), total_steps=epochs * steps_per_epoch, pct_start=pct_start,
        anneal_strategy=anneal_strategy, div_factor=div_factor, final_div_factor=final_div_factor,
        three_phase=three_phase, cycle_momentum=_momentum_ok(optimizer, cycle_momentum))
    return LRSchedule(scheduler, interval="step")


@SCHEDULERS.register("cosine_restarts")
def cosine_restarts(optimizer, epochs: int, steps_per_epoch: int, *, t_0: PositiveFloat = 5.0, t_mult: PositiveInt = 1,
                    eta_min: NonNegativeFloat = 0.0) -> LRSchedule:
    """CosineAnnealingWarmRestarts per batch: first cycle t_0 epochs, each next one t_mult times longer."""
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=_at_least_one(t_0 * steps_per_epoch), T_mult=t_mult, eta_min=eta_min)
    return LRSchedule(scheduler, interval="step")


@SCHEDULERS.register("cyclic")
def cyclic(optimizer, epochs: int, steps_per_epoch: int, *, base_fraction: Probability = 0.1,
           half_cycle_epochs: PositiveFloat = 2.0,
           mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
           gamma: PositiveFloat = 1.0, cycle_momentum: bool = False) -> LRSchedule:
    """CyclicLR per batch between base_fraction x lr and the optimizer's lr, half a cycle every half_cycle_epochs."""
    scheduler = torch.optim.lr_scheduler.CyclicLR(
        optimizer, base_lr=_group_lrs(optimizer, base_fraction), max_lr=_group_lrs(optimizer),
        step_size_up=_at_least_one(half_cycle_epochs * steps_per_epoch), mode=mode, gamma=gamma,
        cycle_momentum=_momentum_ok(optimizer, cycle_momentum))
    return LRSchedule(scheduler, interval="step")


@SCHEDULERS.register("polynomial")
def polynomial(optimizer, epochs: int, steps_per_epoch: int, *, power: PositiveFloat = 1.0) -> LRSchedule:
    """PolynomialLR per batch: lr x (1 - step/total)^power, reaching 0 at the end of the run."""
    scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=epochs * steps_per_epoch, power=power)
    return LRSchedule(scheduler, interval="step")


def _momentum_ok(optimizer: torch.optim.Optimizer, cycle_momentum: bool) -> bool:
    defaults = optimizer.defaults
    if cycle_momentum and "momentum" not in defaults and "betas" not in defaults:
        raise ConfigError(f"scheduler.cycle_momentum needs an optimizer with momentum or betas, "
                          f"not {type(optimizer).__name__}; set scheduler.cycle_momentum=false")
    return cycle_momentum
