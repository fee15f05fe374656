"""Tune trial schedulers and search algorithms from a sweep's `tune` section.

Time is counted in epochs (`training_iteration`: one report per epoch).
"""
from __future__ import annotations

from typing import Any

from launcher.sweep import space as sp
from launcher.sweep.loading import Sweep
from trainlib.config import flatten

TIME_ATTR = "training_iteration"


def build_trial_scheduler(sweep: Sweep) -> Any:
    from ray.tune.schedulers import (ASHAScheduler, FIFOScheduler, HyperBandScheduler, MedianStoppingRule,
                                     PopulationBasedTraining)

    spec = sweep.file.tune.scheduler
    p, epochs = spec.params, sweep.epochs
    if spec.name == "asha":
        return ASHAScheduler(time_attr=TIME_ATTR, max_t=epochs, grace_period=p.grace_period,
                             reduction_factor=p.reduction_factor, brackets=p.brackets)
    if spec.name == "hyperband":
        return HyperBandScheduler(time_attr=TIME_ATTR, max_t=epochs, reduction_factor=p.reduction_factor)
    if spec.name == "median":
        return MedianStoppingRule(time_attr=TIME_ATTR, grace_period=p.grace_period,
                                  min_samples_required=p.min_samples_required)
    if spec.name == "pbt":
        mutations = {key: sp.tune_domain(sweep.file.space[key]) for key in p.mutate}
        return PopulationBasedTraining(time_attr=TIME_ATTR, perturbation_interval=p.perturbation_interval,
                                       hyperparam_mutations=mutations, quantile_fraction=p.quantile_fraction,
                                       resample_probability=p.resample_probability)
    return FIFOScheduler()


def build_search(sweep: Sweep) -> Any:
    """Random and grid search sample Tune's param_space; Optuna defines the space by run.

    `max_concurrent_trials` is applied here: Tune ignores it for a search algorithm it is given."""
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.basic_variant import BasicVariantGenerator

    tune = sweep.file.tune
    if tune.search != "optuna":
        return BasicVariantGenerator(random_state=tune.seed, max_concurrent=tune.max_concurrent_trials or 0)
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    searcher = OptunaSearch(space=sp.OptunaSpace(sweep.file.space, flatten(sweep.base)), metric=tune.metric,
                            mode=tune.resolved_mode, seed=tune.seed)  # a define-by-run space takes them here only
    return ConcurrencyLimiter(searcher, tune.max_concurrent_trials) if tune.max_concurrent_trials else searcher


def describe_scheduler(sweep: Sweep) -> str:
    spec = sweep.file.tune.scheduler
    params = ", ".join(f"{k}={v}" for k, v in spec.params.model_dump().items())
    return f"{spec.name}({params})" if params else spec.name
