"""Sweep files: validated before Ray starts, errors name the file line, the key and the choices."""
from __future__ import annotations

from pathlib import Path

import pytest

from launcher.sweep import space as sp
from launcher.sweep.loading import Sweep, load_sweep
from trainlib.errors import ConfigError
from trainlib.observers import EpochObserver

SEARCH_SPACES = sorted((Path(__file__).parents[3] / "search_spaces").glob("*.yaml"))
GOOD = """\
name: t
base: {epochs: 3}
space:
  optimizer.name: {choice: [sgd, adam]}
  optimizer.lr: {loguniform: [1e-4, 1e-1]}
  optimizer.momentum: {uniform: [0.5, 0.9], when: {optimizer.name: sgd}}
"""


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# name -> (file text, expected line, fragments the message must hold)
BAD = {
    "unknown distribution": ("name: t\nspace:\n  optimizer.lr: {logunifrom: [1, 2]}\n", 3,
                             ["space.optimizer.lr.logunifrom", "allowed: choice, grid, uniform"]),
    "unknown top key": ("name: t\nspace: {seed: [1, 2]}\ntunes: {}\n", 3, ["'tunes'", "allowed: name", "space"]),
    "bad search": ("name: t\nspace: {seed: [1, 2]}\ntune:\n  search: bayes\n", 4,
                   ["tune.search", "'random', 'grid' or 'optuna'", "bayes"]),
    "low above high": ("name: t\nspace:\n  seed: {randint: [5, 1]}\n", 3, ["space.seed", "low < high"]),
    "unknown optimizer in a choice": ("name: t\nspace:\n  optimizer.name:\n    choice: [sgd, adamm]\n", 3,
                                      ["space.optimizer.name", "unknown optimizer 'adamm'", "valid: ", "adamw"]),
    "unknown config key": ("name: t\nspace:\n  optimizer.lrr: [0.1]\n", 3, ["space.optimizer.lrr", "valid: lr"]),
    "param the other choice lacks": ("name: t\nspace:\n  optimizer.name: [sgd, adam]\n  optimizer.momentum: [0.9]\n",
                                     2, ["optimizer.name='adam'", "momentum"]),
    "condition on an unknown key": ("name: t\nspace:\n"
                                    "  optimizer.lr: {uniform: [0.1, 0.2], when: {optimiser.name: sgd}}\n",
                                    3, ["space.optimizer.lr.when.optimiser.name", "neither a space key"]),
    "condition never true": ("name: t\nspace:\n  optimizer.name: [sgd, adam]\n"
                             "  optimizer.momentum: {uniform: [0.1, 0.2], when: {optimizer.name: sgdd}}\n",
                             4, ["never takes ['sgdd']"]),
    "grid search of a range": ("name: t\nspace:\n  optimizer.lr: {uniform: [0.1, 0.2]}\ntune: {search: grid}\n", 3,
                               ["search: grid needs finite values"]),
    "optuna with normal": ("name: t\nspace:\n  optimizer.lr: {normal: [0.1, 0.01]}\ntune: {search: optuna}\n", 3,
                           ["does not work with search: optuna"]),
    "normal reaching negative lr": ("name: t\nspace:\n  optimizer.lr: {normal: [0.1, 0.1]}\n", 3,
                                    ["optimizer.lr", "greater than 0"]),
    "grace beyond epochs": ("name: t\nbase: {epochs: 2}\nspace: {seed: [1]}\ntune:\n  scheduler:\n"
                            "    asha: {grace_period: 5}\n", 6, ["grace_period", "exceeds the trials' 2 epochs"]),
    "unknown scheduler param": ("name: t\nspace: {seed: [1]}\ntune:\n  scheduler: {asha: {grace: 2}}\n", 4,
                                ["tune.scheduler.asha.grace", "allowed: grace_period"]),
    "pbt on a family name": ("name: t\nspace:\n  optimizer.name: [sgd, adam]\n  optimizer.lr: {uniform: [0.01, 0.1]}\n"
                             "tune:\n  scheduler: {pbt: {mutate: [optimizer.name]}}\n", 6, ["allowed: optimizer.lr"]),
    "bad base value": ("name: t\nbase:\n  optimizer:\n    lr: -1\nspace: {seed: [1]}\n", 4,
                       ["base.optimizer.lr", "greater than 0"]),
    "fractional gpu for ddp": ("name: t\nspace: {seed: [1]}\nresources: {gpu: 0.5, workers: 2}\n", 3,
                               ["resources", "whole GPUs"]),
    "ddp trials with pbt": ("name: t\nspace:\n  optimizer.lr: {uniform: [0.01, 0.1]}\ntune:\n"
                            "  scheduler: {pbt: {mutate: [optimizer.lr]}}\nresources:\n  workers: 2\n", 7,
                            ["resources.workers", "use workers: 1 with pbt"]),
    "tracking off": ("name: t\nbase:\n  tracking: {mlflow: false}\nspace: {seed: [1]}\n", 3, ["tracking.mlflow"]),
    "malformed yaml": ("name: t\nspace:\n  seed: [1, 2\n", 4, ["malformed YAML"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_sweep_file_names_line_key_and_choices(case, tmp_path):
    text, line, fragments = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_base_file_errors_point_into_the_base_file(tmp_path):
    base = write(tmp_path, "epochs: 3\nscheduler:\n  name: cosinee\n", "base.yaml")
    path = write(tmp_path, "name: t\nbase: base.yaml\nspace: {seed: [1]}\n")
    with pytest.raises(ConfigError, match=rf"^{base}:3: scheduler.name: .*unknown scheduler 'cosinee'"):
        load_sweep(path)


def test_overrides_go_over_the_base(tmp_path):
    sweep = load_sweep(write(tmp_path, GOOD), [{"epochs": 5, "batch_size": 16}])
    assert sweep.epochs == 5 and sweep.base["batch_size"] == 16


def test_conditional_keys_apply_only_when_their_condition_holds(tmp_path):
    sweep = load_sweep(write(tmp_path, GOOD))
    sample = {"optimizer.name": "adam", "optimizer.lr": 0.01, "optimizer.momentum": 0.7}
    assert sweep.active(sample) == {"optimizer.name": "adam", "optimizer.lr": 0.01}
    assert "momentum" not in sweep.trial_config(sample).optimizer
    sgd = sweep.trial_config({**sample, "optimizer.name": "sgd"})
    assert sgd.optimizer["momentum"] == 0.7 and sgd.optimizer["lr"] == 0.01


def test_yaml_exponents_without_a_dot_are_numbers(tmp_path):
    sweep = load_sweep(write(tmp_path, GOOD))
    assert sweep.file.space["optimizer.lr"].args == [1e-4, 1e-1]


def test_sweep_survives_a_json_round_trip_for_resume(tmp_path):
    import json

    sweep = load_sweep(write(tmp_path, GOOD))
    assert Sweep.from_json(json.loads(json.dumps(sweep.to_json()))) == sweep


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, empty_store_template) -> tuple[str, str]:
    """A finished 1-epoch run in a store of its own: (tracking uri, run id)."""
    import shutil

    from trainlib.run import run

    root = tmp_path_factory.mktemp("source")
    shutil.copy(empty_store_template, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    ids: list[str] = []
    run({"epochs": 1, "output": {"dir": str(root / "runs")}, "tracking": {"uri": uri}, "visuals": {"enabled": False}},
        progress=False, echo=lambda _: None, observers=[EpochObserver(lambda report: ids.append(report.run_id))])
    return uri, ids[0]


@pytest.mark.parametrize("path", SEARCH_SPACES, ids=lambda p: p.name)
def test_shipped_search_spaces_load_and_shrink_for_smoke(path, trained_run):
    store = [{"tracking": {"uri": trained_run[0]}}]  # finetune.yaml starts from the store's latest run
    sweep = load_sweep(path, store)
    assert sweep.name == path.stem and sp.trial_count(sweep.file) >= 2
    smoke = load_sweep(path, store, smoke=True)
    assert smoke.smoke and smoke.epochs <= 2 and 1 <= sp.trial_count(smoke.file) <= 4
    assert all(d.kind != "grid" for d in smoke.file.space.values())
    params = smoke.file.tune.scheduler.params
    assert getattr(params, "grace_period", 1) <= smoke.epochs


@pytest.mark.parametrize("search, count", [("random", 3 * 2), ("grid", 3 * 2 * 2), ("optuna", 3)])
def test_trial_count_follows_grids_and_search(tmp_path, search, count):
    text = ("name: t\nspace:\n  optimizer.name: [sgd, adam]\n  seed: {grid: [0, 1]}\n"
            f"tune: {{search: {search}, num_samples: 3}}\n")
    if search == "optuna":
        text = text.replace("{grid: [0, 1]}", "{randint: [0, 2]}")
    assert sp.trial_count(load_sweep(write(tmp_path, text)).file) == count


def test_a_latest_source_is_pinned_to_that_run_before_trials_start(tmp_path, trained_run):
    uri, run_id = trained_run
    text = "name: t\nbase:\n  finetune: {source: 'latest:last'}\nspace: {seed: [1, 2]}\n"
    sweep = load_sweep(write(tmp_path, text), [{"tracking": {"uri": uri}}])
    assert sweep.base["finetune"]["source"] == f"{run_id}:last"


def test_a_source_that_is_not_there_fails_at_its_line(tmp_path):
    text = "name: t\nbase:\n  epochs: 2\n  finetune: {source: latest}\nspace: {seed: [1, 2]}\n"
    with pytest.raises(ConfigError) as info:
        load_sweep(write(tmp_path, text))
    assert str(info.value).startswith(f"{tmp_path / 'sweep.yaml'}:4: base.finetune.source: 'latest': no finished run")
    assert not (tmp_path / "mlflow.db").exists(), "looking for a run created no store"


def test_training_options_are_sweepable_dotted_keys(tmp_path):
    sweep = load_sweep(write(tmp_path, """\
name: t
space:
  train.precision: {choice: [fp32, bf16]}
  train.ema: {choice: [null, 0.99]}
  train.accumulate: {choice: [1, 2]}
  train.early_stop.patience: {randint: [2, 5]}
  optimizer.clip_grad_norm: {loguniform: [0.1, 10.0]}
"""))
    cfg = sweep.trial_config({"train.precision": "bf16", "train.ema": 0.99, "train.accumulate": 2,
                              "train.early_stop.patience": 3, "optimizer.clip_grad_norm": 1.0})
    assert (cfg.train.precision, cfg.train.ema, cfg.train.accumulate) == ("bf16", 0.99, 2)
    assert cfg.train.early_stop.patience == 3 and cfg.train.early_stop.metric == "valid/loss"
    assert cfg.optimizer["clip_grad_norm"] == 1.0
    with pytest.raises(ConfigError, match="train.precision"):
        load_sweep(write(tmp_path, "name: t\nspace:\n  train.precision: {choice: [fp32, fp64]}\n", "bad.yaml"))


def test_a_sweep_without_a_finetune_source_is_loaded_without_torch(tmp_path):
    """The driver only checks the file: torch (~1.2 s) waits for the trials' processes (and the
    summary's background imports); a `finetune.source` is looked up in its checkpoints, with torch."""
    import subprocess
    import sys

    probe = ("import sys; from launcher.sweep.loading import load_sweep; "
             "load_sweep(sys.argv[1]); print('torch' in sys.modules)")
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nspace:\n  seed: {grid: [0, 1]}\n  optimizer.lr: {loguniform: [0.001, 0.1]}\n"
                    "tune: {search: random, num_samples: 2}\n")
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False"], done.stderr[-2000:]
