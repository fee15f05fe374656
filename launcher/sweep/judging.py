"""The epochs at which a sweep's trial scheduler judges trials, as Ray Tune computes them.

A trial's visuals are also drawn there (`visuals.at_epochs`), so a trial the scheduler stops
keeps the pictures (confusion matrices, Grad-CAM, ...) of the epoch it was judged at.
Epochs count Tune's `training_iteration` (one report per epoch); a scheduler judges at the
first report that reaches a milestone, so a fractional milestone is judged at its ceiling.
"""
from __future__ import annotations

import math

from launcher.sweep.schema import SchedulerSpec


def judging_epochs(spec: SchedulerSpec, max_t: int) -> list[int]:
    p = spec.params
    if spec.name == "asha":
        found = asha_rungs(p.grace_period, p.reduction_factor, p.brackets, max_t)
    elif spec.name == "hyperband":
        found = hyperband_milestones(p.reduction_factor, max_t)
    elif spec.name == "pbt":
        found = range(p.perturbation_interval, max_t + 1, p.perturbation_interval)
    elif spec.name == "median":  # judges every epoch once the grace period is over
        found = range(p.grace_period, max_t + 1)
    else:
        found = []
    return sorted({e for e in found if 1 <= e < max_t})  # the last epoch is drawn anyway


def asha_rungs(grace_period: int, reduction_factor: float, brackets: int, max_t: int) -> set[int]:
    """ray.tune.schedulers.async_hyperband._Bracket: rungs grace_period * rf^(k + s) for each bracket s."""
    rungs = set()
    for s in range(brackets):
        count = int(math.log(max_t / grace_period) / math.log(reduction_factor) - s + 1)
        rungs |= {math.ceil(grace_period * reduction_factor ** (k + s)) for k in range(count)}
    return rungs


def hyperband_milestones(eta: float, max_t: int) -> set[int]:
    """ray.tune.schedulers.hyperband: bracket s starts at r0 = max_t * eta^-s and multiplies r by eta
    at each of its s halvings; trials are compared at the cumulative r."""
    brackets = int(round(math.log(max_t) / math.log(eta))) + 1
    milestones = set()
    for s in range(brackets):
        r = int(max_t * eta ** -s)
        cumulative = r
        milestones.add(cumulative)
        for _ in range(s):
            r = int(min(r * eta, max_t - cumulative))
            cumulative += r
            milestones.add(cumulative)
    return milestones
