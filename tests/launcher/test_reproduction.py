"""`launch train --reproduce RUN_ID`: a finished CPU run re-run from its config and seed matches bit
for bit; a changed package version and a changed metric are reported."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from launcher.cli import main
from launcher.reproduction import report_match
from tests.shared_runs import relocated_copy
from trainlib import tags as tag
from trainlib.reproduce import first_difference, same


def test_the_first_difference_is_the_earliest_step_then_the_first_metric():
    a = {"train/loss": {1: 0.5, 2: 0.4}, "valid/acc": {1: 0.7, 2: 0.8}}
    b = {"train/loss": {1: 0.5, 2: 0.41}, "valid/acc": {1: 0.7, 2: 0.79}}
    found = first_difference(a, b, tolerance=0.0)
    assert (found.metric, found.step, found.original, found.reproduced) == ("train/loss", 2, 0.4, 0.41)
    assert first_difference(a, {**b, "train/loss": {1: 0.5}}, 0.0).reproduced is None  # a step not logged
    assert first_difference(a, b, tolerance=0.05) is None  # a GPU's tolerance
    assert same(float("nan"), float("nan"), 0.0) and not same(0.1, 0.1 + 1e-12, 0.0)


@pytest.mark.slow
def test_a_cpu_run_reproduces_bit_for_bit_and_a_changed_version_or_metric_is_reported(default_run_copy, tmp_path):
    import mlflow

    store, client = default_run_copy.uri, default_run_copy.client()  # the shared default run, copied: changed below
    original = client.get_run(default_run_copy.run_id)
    run_id = original.info.run_id
    assert original.data.tags[tag.MLFLOW_VERSION] == mlflow.__version__  # what reproduction needs, recorded
    assert {tag.TORCH_VERSION, tag.TORCHVISION_VERSION, tag.RAY_VERSION, tag.LAUNCH_VERSION,
            tag.DEVICE} <= set(original.data.tags)

    again = CliRunner().invoke(main, ["train", "--reproduce", run_id[:8], "--tracking-uri", store, "--no-progress",
                                      "--output-dir", str(tmp_path / "runs")], catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert f"metric values of run {run_id} match bit for bit" in again.output
    assert "environment differs" not in again.output
    (copy,) = client.search_runs([original.info.experiment_id], filter_string=f"tags.`{tag.REPRODUCES}` = '{run_id}'")
    assert copy.info.run_id != run_id and copy.data.params["seed"] == original.data.params["seed"]

    client.set_tag(run_id, tag.MLFLOW_VERSION, "0.0.1")
    lines = []
    assert report_match(run_id, store, 0, lines.append)
    assert f"environment differs: mlflow: 0.0.1 -> {mlflow.__version__}" in lines

    client.log_metric(run_id, "valid/acc", 0.125, step=2)  # the original's history now differs at epoch 2
    lines.clear()
    assert not report_match(run_id, store, 0, lines.append)
    assert lines[0].startswith("not reproduced") and lines[1].startswith("first difference: valid/acc at step 2: "
                                                                         "original 0.125, reproduced ")


def test_reproduce_takes_no_other_config(tmp_path, store):
    result = CliRunner().invoke(main, ["train", "--reproduce", "abcd1234", "-s", "epochs=1", "--tracking-uri", store])
    assert result.exit_code == 2
    assert "error: --reproduce re-runs the run's own config; drop --set" in result.output
    unknown = CliRunner().invoke(main, ["train", "--reproduce", "abcd1234", "--tracking-uri", store])
    assert unknown.exit_code == 2 and "error: unknown run 'abcd1234'" in unknown.output


@pytest.mark.slow
def test_a_sweep_trial_reproduces_bit_for_bit_outside_ray(demo_store, tmp_path):
    """The command a sweep's report gives for its best trial: the trial ran on 1 torch thread in its Ray
    worker; the reproduction uses the threads it recorded, so CPU sums add up in the same order."""
    from mlflow import MlflowClient

    copy = relocated_copy(demo_store.root, tmp_path / "copy")  # the demo store is shared: its runs stay as they are
    trial = demo_store.trial_run_ids[0]
    assert MlflowClient(demo_store.uri).get_run(trial).data.tags[tag.THREADS] == "1"
    result = CliRunner().invoke(main, ["train", "--reproduce", trial, "--tracking-uri", f"sqlite:///{copy}/mlflow.db",
                                       "--no-progress", "--output-dir", str(tmp_path / "runs")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"metric values of run {trial} match bit for bit" in result.output
