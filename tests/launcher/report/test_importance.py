"""Parameter importance (optuna's fANOVA) on planted sweeps: synthetic trials, no Ray."""
from __future__ import annotations

import math
import random

from launcher.report.importance import FEW_TRIALS, Scored, param_importance


def planted(count: int, seed: int = 1) -> list[Scored]:
    """Trials where only the learning rate matters (best near 3e-3); the other parameters are noise."""
    rng = random.Random(seed)
    trials = []
    for _ in range(count):
        params = {"optimizer.lr": 10 ** rng.uniform(-4, -1), "optimizer.name": rng.choice(["sgd", "adam", "rmsprop"]),
                  "scheduler.name": rng.choice(["cosine", "step", "constant"]), "batch_size": rng.choice([32, 64, 128])}
        value = 0.95 - 0.2 * abs(math.log10(params["optimizer.lr"]) + 2.5) + rng.gauss(0, 0.005)
        trials.append(Scored(params, value))
    return trials


def test_the_one_parameter_that_matters_ranks_first_with_most_of_the_variance():
    result = param_importance(planted(30), log_keys=["optimizer.lr"])
    assert list(result.ranking)[0] == "optimizer.lr"
    assert result.ranking["optimizer.lr"] > 0.8
    assert set(result.ranking) == {"optimizer.lr", "optimizer.name", "scheduler.name", "batch_size"}
    assert "fANOVA" in result.method and result.caution is None and result.trials == 30


def test_few_trials_are_ranked_with_a_caution():
    result = param_importance(planted(FEW_TRIALS - 1))
    assert result.ranking and result.caution.startswith(f"only {FEW_TRIALS - 1} trials")


def test_one_trial_or_no_varying_parameter_is_not_ranked():
    assert param_importance(planted(1)).ranking == {}
    same = [Scored({"optimizer.name": "adam"}, v) for v in (0.1, 0.2, 0.3)]
    result = param_importance(same)
    assert result.ranking == {} and result.caution.startswith("not computed")


def test_a_parameter_only_some_trials_have_is_left_out_and_said():
    trials = [Scored({**t.params, **({"optimizer.momentum": 0.9} if t.params["optimizer.name"] == "sgd" else {})},
                     t.value) for t in planted(24)]
    result = param_importance(trials)
    assert result.left_out == ["optimizer.momentum"] and "optimizer.momentum" not in result.ranking
    assert list(result.ranking)[0] == "optimizer.lr"
