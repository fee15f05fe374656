"""Parameter importance for a sweep's metric: optuna's fANOVA on the scored trials, whatever search made them.

The trials go into an in-memory optuna study (`optuna.trial.create_trial`) with a distribution per
parameter taken from the values they used (log scale where the space samples on one), then
`optuna.importance.get_param_importances` with `FanovaImportanceEvaluator` ranks the parameters by
the share of the metric's variance each explains. A parameter that only some trials have (`when:`)
is left out: fANOVA needs every trial to have a value.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

METHOD = ("fANOVA (functional ANOVA on a random forest fitted to the trials; "
          "optuna.importance.FanovaImportanceEvaluator, seed 0)")
FEW_TRIALS = 20  # below this the forest is fitted on too few points to trust the ranking


@dataclass(frozen=True)
class Scored:
    params: Mapping[str, Any]
    value: float


@dataclass
class Importance:
    method: str
    trials: int
    ranking: dict[str, float] = field(default_factory=dict)  # param -> share, highest first
    left_out: list[str] = field(default_factory=list)  # params only some trials have
    caution: str | None = None

    def lines(self) -> list[str]:
        return [f"{key}: {share:.2f}" for key, share in self.ranking.items()]


def param_importance(trials: Sequence[Scored], log_keys: Sequence[str] = ()) -> Importance:
    """`trials`: the finished and stopped trials with their metric; `log_keys`: params sampled on a log scale."""
    varying = [k for k in sorted(set().union(*(t.params for t in trials))) if _varies(k, trials)]
    shared = [k for k in varying if all(k in t.params for t in trials)]
    result = Importance(METHOD, len(trials), left_out=[k for k in varying if k not in shared])
    if len(trials) < 2 or not shared:
        result.caution = (f"not computed: {len(trials)} scored trial(s) and {len(shared)} parameter(s) that vary "
                          "in all of them; importance needs at least 2 of each")
        return result
    if len(trials) < FEW_TRIALS:
        result.caution = (f"only {len(trials)} trials: with fewer than {FEW_TRIALS} the ranking is a rough hint, "
                          "not a measurement")
    result.ranking = _fanova(trials, shared, set(log_keys))
    return result


def _varies(key: str, trials: Sequence[Scored]) -> bool:
    return len({repr(t.params.get(key)) for t in trials}) > 1  # a parameter some trials lack varies too


def _fanova(trials: Sequence[Scored], keys: list[str], log_keys: set[str]) -> dict[str, float]:
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {k: _distribution(k, [t.params[k] for t in trials], k in log_keys) for k in keys}
    study = optuna.create_study(direction="maximize")  # fANOVA splits variance: the direction plays no part
    for t in trials:
        params = {k: _value(t.params[k], distributions[k]) for k in keys}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=float(t.value)))
    found = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0))
    return {k: float(v) for k, v in found.items()}


def _distribution(key: str, values: list[Any], log: bool):
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        low, high = float(min(values)), float(max(values))
        return FloatDistribution(low, high, log=log and low > 0)
    return CategoricalDistribution(sorted({_category(v) for v in values}))


def _value(value: Any, distribution) -> Any:
    from optuna.distributions import CategoricalDistribution

    return _category(value) if isinstance(distribution, CategoricalDistribution) else float(value)


def _category(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)
