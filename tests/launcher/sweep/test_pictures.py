"""The sweep's pictures: trial labels by what differs, the judging epochs Ray Tune's schedulers use,
and the per-parameter picture drawn from a real sweep file's trials."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from launcher.sweep.judging import judging_epochs
from launcher.sweep.loading import load_sweep
from launcher.sweep.pictures import Objective, plot_parameters, trial_labels, value_text
from launcher.sweep.schema import SchedulerSpec
from launcher.sweep.tracking import TrialRow


def row(trial: str, status: str = "FINISHED", best: float = 0.9, **params) -> TrialRow:
    return TrialRow(trial=trial, run_id=trial, status=status, epochs=3, best=best, last=best, test_acc=None,
                    params=params, run_dir="", node_ip="", gpu_ids="", attempt="1")


KEYS = ["optimizer.name", "optimizer.lr", "optimizer.momentum", "scheduler.name"]


def test_trials_are_labelled_by_what_differs():
    rows = [row("optim-00013", **{"optimizer.name": "rmsprop", "optimizer.lr": 0.000812, "optimizer.momentum": 0.9,
                                  "scheduler.name": "plateau"}),
            row("optim-00014", **{"optimizer.name": "adam", "optimizer.lr": 0.05, "scheduler.name": "plateau"}),
            row("optim-00015", **{"optimizer.name": "adam", "optimizer.lr": 0.05, "scheduler.name": "cosine"})]
    assert trial_labels(rows, KEYS) == {"optim-00013": "rmsprop lr=8.1e-4 momentum=0.9 plateau",
                                        "optim-00014": "adam lr=0.05 plateau", "optim-00015": "adam lr=0.05 cosine"}


def test_labels_that_would_repeat_keep_the_trial_name_and_clashing_keys_stay_dotted():
    rows = [row("a", **{"optimizer.lr": 0.1, "scheduler.lr": 1e-5}), row("b", **{"optimizer.lr": 0.1, "scheduler.lr": 1e-5}),
            row("c", **{"optimizer.lr": 0.2, "scheduler.lr": 2e-5})]
    assert trial_labels(rows, ["optimizer.lr", "scheduler.lr"]) == {
        "a": "optimizer.lr=0.1 scheduler.lr=1e-5 (a)", "b": "optimizer.lr=0.1 scheduler.lr=1e-5 (b)",
        "c": "optimizer.lr=0.2 scheduler.lr=2e-5"}
    assert trial_labels(rows[:1], ["optimizer.lr"]) == {"a": "a"}  # nothing differs: the trial name


@pytest.mark.parametrize("value, text", [(0.0008, "8e-4"), (0.000812, "8.1e-4"), (0.05, "0.05"), (3, "3"),
                                         ("adam", "adam"), (True, "True"), (12345.0, "1.2e4")])
def test_values_are_written_short(value, text):
    assert value_text(value) == text


@pytest.mark.parametrize("spec, epochs", [
    ({"asha": {"grace_period": 3}}, 15), ({"asha": {"grace_period": 1, "reduction_factor": 2}}, 2),
    ({"asha": {"grace_period": 1, "reduction_factor": 2, "brackets": 3}}, 20),
    ({"asha": {"grace_period": 2, "reduction_factor": 2.5}}, 30)])
def test_asha_judging_epochs_are_ray_tunes_rungs(spec, epochs):
    from ray.tune.schedulers import ASHAScheduler

    p = spec["asha"]
    ray_asha = ASHAScheduler(time_attr="training_iteration", max_t=epochs, grace_period=p["grace_period"],
                             reduction_factor=p.get("reduction_factor", 3), brackets=p.get("brackets", 1))
    rungs = {-(-milestone // 1) for bracket in ray_asha._brackets for milestone, _ in bracket._rungs}
    assert judging_epochs(SchedulerSpec.model_validate(spec), epochs) == sorted(int(r) for r in rungs if r < epochs)


def test_pbt_judges_every_perturbation_interval_and_fifo_never():
    pbt = SchedulerSpec.model_validate({"pbt": {"perturbation_interval": 4, "mutate": ["optimizer.lr"]}})
    assert judging_epochs(pbt, 15) == [4, 8, 12]
    assert judging_epochs(SchedulerSpec.model_validate("fifo"), 15) == []


def test_parameter_picture_has_a_panel_per_swept_key(tmp_path):
    sweep = load_sweep(Path(__file__).parents[3] / "search_spaces" / "optim.yaml")
    rows = [row(f"t{i}", status=("KILLED" if i % 3 else "FINISHED"), best=0.5 + i / 40,
                **{"optimizer.name": name, "optimizer.lr": 10 ** -(1 + i % 3), "scheduler.name": "cosine",
                   **({"optimizer.momentum": 0.9} if name == "sgd" else {})})
            for i, name in enumerate(["sgd", "adam", "rmsprop", "sgd", "nadam"])]
    plot_parameters(rows, Objective.of(sweep), tmp_path / "parameters.png")
    image = Image.open(tmp_path / "parameters.png")
    assert image.format == "PNG" and image.width > 3 * 400  # three panels in a row, a second row below
    assert image.height > 2 * 300
