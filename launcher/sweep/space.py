"""The search space: conditions, Tune / Optuna spaces, trial counts and probe configs.

A conditional key (`when: {optimizer.name: sgd}`) is sampled by every search algorithm but
applied to a trial only when its condition holds; Optuna, which can branch, suggests it
only then (define-by-run), so its model never sees values that had no effect.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Mapping

from launcher.sweep.schema import Dist, SweepFile

_MISSING = object()
OPTUNA_KINDS = ("choice", "uniform", "quniform", "loguniform", "randint", "qrandint", "lograndint")


def is_active(dist: Dist, values: Mapping[str, Any]) -> bool:
    return all(values.get(key, _MISSING) in allowed for key, allowed in (dist.when or {}).items())


def active_sample(space: Mapping[str, Dist], sample: Mapping[str, Any], base_flat: Mapping[str, Any]) -> dict[str, Any]:
    """The sampled values that apply to a trial, in file order."""
    active: dict[str, Any] = {}
    for key, dist in space.items():
        if key in sample and is_active(dist, {**base_flat, **active}):
            active[key] = sample[key]
    return active


def grid_kind(dist: Dist, search: str) -> bool:
    """Whether the dimension is enumerated (Tune grid) rather than sampled."""
    return dist.kind == "grid" or (search == "grid" and dist.kind == "choice")


def trial_count(spec: SweepFile) -> int:
    if spec.tune.search == "optuna":
        return spec.tune.num_samples
    sizes = [len(d.args) for d in spec.space.values() if grid_kind(d, spec.tune.search)]
    return spec.tune.num_samples * math.prod(sizes)


def tune_space(spec: SweepFile) -> dict[str, Any]:
    """Tune's param_space for random/grid search (empty for Optuna, which defines it by run)."""
    if spec.tune.search == "optuna":
        return {}
    return {key: tune_domain(dist, grid_kind(dist, spec.tune.search)) for key, dist in spec.space.items()}


def tune_domain(dist: Dist, as_grid: bool = False) -> Any:
    """One dimension as a Tune domain (PBT also resamples its mutations from these)."""
    from ray import tune

    if as_grid:
        return tune.grid_search(dist.args)
    if dist.kind == "choice":
        return tune.choice(dist.args)
    makers = {
        "uniform": tune.uniform, "quniform": tune.quniform, "loguniform": tune.loguniform,
        "qloguniform": tune.qloguniform, "randint": tune.randint, "qrandint": tune.qrandint,
        "lograndint": tune.lograndint, "normal": tune.randn, "qnormal": tune.qrandn,
    }
    return makers[dist.kind](*dist.args)


class OptunaSpace:
    """Optuna define-by-run space: conditional keys are suggested only when active."""

    def __init__(self, space: Mapping[str, Dist], base_flat: Mapping[str, Any]):
        self.space = dict(space)
        self.base_flat = dict(base_flat)

    def __call__(self, trial) -> dict[str, Any]:
        values = dict(self.base_flat)
        constants = {}
        for key, dist in self.space.items():
            if not is_active(dist, values):
                continue
            values[key] = self._suggest(trial, key, dist)
            if dist.kind == "choice" and not _plain(dist.args):
                constants[key] = values[key]
        return constants

    @staticmethod
    def _suggest(trial, key: str, dist: Dist) -> Any:
        a = dist.args
        if dist.kind == "choice":
            if _plain(a):
                return trial.suggest_categorical(key, a)
            return a[trial.suggest_categorical(f"{key}#index", list(range(len(a))))]
        if dist.kind in ("uniform", "quniform", "loguniform"):
            step = a[2] if dist.kind == "quniform" else None
            return trial.suggest_float(key, a[0], a[1], step=step, log=dist.kind == "loguniform")
        if dist.kind == "qrandint":
            return trial.suggest_int(key, a[0], a[1], step=a[2])
        return trial.suggest_int(key, a[0], a[1] - 1, log=dist.kind == "lograndint")  # randint, lograndint


def _plain(values: list[Any]) -> bool:
    """Optuna categoricals hold None/bool/int/float/str only."""
    return all(v is None or isinstance(v, (bool, int, float, str)) for v in values)


def representative(dist: Dist) -> Any:
    """A typical value of a dimension (the first choice, the middle of a range)."""
    a = dist.args
    if dist.values is not None:
        return a[0]
    if dist.kind in ("loguniform", "qloguniform", "lograndint"):
        value = math.sqrt(a[0] * a[1])
    elif dist.kind in ("normal", "qnormal"):
        value = a[0]
    else:
        value = (a[0] + a[1]) / 2
    return round(value) if "int" in dist.kind else value


def extremes(dist: Dist) -> list[Any]:
    """The values at the edges of a dimension: every choice, or a range's ends."""
    a = dist.args
    if dist.values is not None:
        return a
    if dist.kind in ("normal", "qnormal"):
        return [a[0] - 3 * a[1], a[0] + 3 * a[1]]
    if dist.kind in ("randint", "lograndint"):
        return [a[0], a[1] - 1]
    return [a[0], a[1]]


def combinations(space: Mapping[str, Dist], limit: int) -> tuple[list[dict[str, Any]], int]:
    """Every combination of the finite dimensions (others at a typical value), up to `limit`.

    Returns the combinations and how many exist in all."""
    keys = list(space)
    options = [space[k].values or [representative(space[k])] for k in keys]
    total = math.prod(len(o) for o in options)
    combos = [dict(zip(keys, values)) for values in itertools.islice(itertools.product(*options), limit)]
    return combos, total
