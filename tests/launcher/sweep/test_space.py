"""Search spaces and schedulers as Ray Tune / Optuna objects, and PBT's hyperparameter hand-over."""
from __future__ import annotations

from pathlib import Path

import pytest

from launcher.sweep import space as sp
from launcher.sweep.loading import load_sweep
from launcher.sweep.schema import KINDS, Dist

ARGS = {"choice": [[1, 2]], "grid": [[1, 2]], "uniform": [0.1, 0.2], "quniform": [0.1, 0.5, 0.1],
        "loguniform": [1e-3, 1e-1], "qloguniform": [1e-3, 1e-1, 1e-3], "randint": [1, 5], "qrandint": [1, 9, 2],
        "lograndint": [1, 100], "normal": [0.0, 1.0], "qnormal": [0.0, 1.0, 0.5]}


def test_every_distribution_kind_has_arguments_here():
    assert sorted(ARGS) == sorted(KINDS)


@pytest.mark.parametrize("kind", sorted(ARGS))
def test_each_kind_becomes_a_tune_domain_sampling_inside_its_range(kind):
    from ray.tune.search.sample import Domain

    args = ARGS[kind] if kind in ("choice", "grid") else list(ARGS[kind])
    dist = Dist(**{kind: args[0] if kind in ("choice", "grid") else args})
    domain = sp.tune_domain(dist, as_grid=kind == "grid")
    if kind == "grid":
        assert domain == {"grid_search": [1, 2]}
        return
    assert isinstance(domain, Domain)
    values = domain.sample(size=200)
    if kind == "choice":
        assert set(values) == {1, 2}
    elif kind not in ("normal", "qnormal"):
        high = args[1]
        assert all(args[0] <= v <= high for v in values)
        assert "int" not in kind or all(float(v).is_integer() for v in values)


def test_optuna_suggests_conditional_keys_only_when_active(tmp_path):
    import optuna

    path = tmp_path / "s.yaml"
    path.write_text("name: t\nspace:\n  optimizer.name: [sgd, adam]\n  optimizer.lr: {loguniform: [1e-4, 1e-1]}\n"
                    "  optimizer.momentum: {uniform: [0.5, 0.9], when: {optimizer.name: sgd}}\n"
                    "  transforms.train: [[normalize], [random_crop, normalize]]\ntune: {search: optuna}\n")
    sweep = load_sweep(path)
    space = sp.OptunaSpace(sweep.file.space, {"optimizer.name": "sgd"})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    constants = []
    for _ in range(12):
        trial = study.ask()
        constants.append(space(trial))
        study.tell(trial, 0.0)
    for trial, const in zip(study.trials, constants):
        assert ("optimizer.momentum" in trial.params) == (trial.params["optimizer.name"] == "sgd")
        assert 1e-4 <= trial.params["optimizer.lr"] <= 1e-1
        assert const["transforms.train"] in ([["normalize"], ["random_crop", "normalize"]])
    assert {t.params["optimizer.name"] for t in study.trials} == {"sgd", "adam"}


SCHEDULERS = {"fifo": "FIFOScheduler", "asha": "AsyncHyperBandScheduler", "hyperband": "HyperBandScheduler",
              "median": "MedianStoppingRule", "pbt": "PopulationBasedTraining"}


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_schedulers_count_time_in_epochs(name, tmp_path):
    from launcher.sweep.schedulers import build_trial_scheduler

    params = "{mutate: [optimizer.lr]}" if name == "pbt" else "{}"
    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nbase: {{epochs: 6}}\nspace:\n  optimizer.lr: {{uniform: [0.01, 0.1]}}\n"
                    f"tune:\n  scheduler: {{{name}: {params}}}\n")
    scheduler = build_trial_scheduler(load_sweep(path))
    assert type(scheduler).__name__ == SCHEDULERS[name]
    if name != "fifo":
        assert scheduler._time_attr == "training_iteration"
    max_t = {"asha": "_max_t", "hyperband": "_max_t_attr"}
    if name in max_t:
        assert getattr(scheduler, max_t[name]) == 6


def test_pbt_donor_checkpoint_takes_this_trials_optimizer_values():
    """The optimizer and schedule state from another trial's checkpoint get this trial's lr
    (scaled, so the schedule's progress stays) and momentum."""
    import torch

    from launcher.sweep.trainable import adopt_hyperparams
    from trainlib.config import resolve
    from trainlib.optimizers import build_optimizer
    from trainlib.schedulers import build_scheduler

    donor_cfg = resolve([{"optimizer": {"lr": 0.1}, "scheduler": "step"}])
    own_cfg = resolve([{"optimizer": {"lr": 0.02, "momentum": 0.5}, "scheduler": "step"}])
    model = torch.nn.Linear(3, 2)
    opt = build_optimizer(donor_cfg.optimizer, model)
    sched = build_scheduler(donor_cfg.scheduler, opt, 30, 5)
    for _ in range(10):  # StepLR: lr x0.1 after 10 epochs
        opt.step()
        sched.after_epoch({})
    state = {"config": donor_cfg.to_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
    adopt_hyperparams(state, own_cfg.to_dict())
    fresh = build_optimizer(own_cfg.optimizer, model)
    fresh_sched = build_scheduler(own_cfg.scheduler, fresh, 30, 5)
    fresh.load_state_dict(state["optimizer"])
    fresh_sched.load_state_dict(state["scheduler"])
    assert fresh.param_groups[0]["lr"] == pytest.approx(0.002) and fresh.param_groups[0]["momentum"] == 0.5
    for _ in range(10):
        fresh.step()
        fresh_sched.after_epoch({})
    assert fresh.param_groups[0]["lr"] == pytest.approx(0.0002), "the schedule goes on from the new lr"

    same = {"config": own_cfg.to_dict(), "optimizer": fresh.state_dict(), "scheduler": fresh_sched.state_dict()}
    adopt_hyperparams(same, own_cfg.to_dict())  # a trial's own checkpoint: nothing changes
    assert same["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0002)


def test_combinations_cover_every_choice_and_count_all(tmp_path):
    path = Path(tmp_path / "s.yaml")
    path.write_text("name: t\nspace:\n  optimizer.name: [sgd, adam]\n  seed: {grid: [0, 1, 2]}\n"
                    "  optimizer.lr: {uniform: [0.01, 0.1]}\n")
    combos, total = sp.combinations(load_sweep(path).file.space, limit=4)
    assert total == 6 and len(combos) == 4
    assert all(c["optimizer.lr"] == pytest.approx(0.055) for c in combos)


@pytest.mark.parametrize("search", ["random", "grid", "optuna"])
def test_max_concurrent_trials_caps_every_search(search, tmp_path):
    """Tune itself ignores max_concurrent_trials for a search algorithm it is handed."""
    from launcher.sweep.schedulers import build_search

    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nspace:\n  optimizer.lr: [0.01, 0.1]\ntune: {{search: {search}, max_concurrent_trials: 2}}\n")
    algorithm = build_search(load_sweep(path))
    assert algorithm.max_concurrent == 2
