"""Several `launch train` started at once in a new folder share one new MLflow store: its
creation is serialized (trainlib.tracking.mlflow_store), so every run finishes with every step."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROCESSES = 8
LIGHT = ["--threads", "1", "--batch-size", "256", "-s", "visuals.enabled=false"]
EPOCH_METRICS = ("train/loss", "train/acc", "valid/loss", "valid/acc", "valid/best_acc", "lr")


@pytest.mark.slow
def test_eight_trainings_started_together_on_a_fresh_folder_all_finish(tmp_path):
    from mlflow import MlflowClient

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    # one thread each (8 processes on the machine's cores), few batches, no pictures: the race is
    # the store's creation and its writes, which all still happen
    procs = [subprocess.Popen([sys.executable, "-m", "launcher", "train", "--epochs", "1", "--no-progress",
                               "--seed", str(seed), *LIGHT], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in range(PROCESSES)]
    outputs = [proc.communicate(timeout=900) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, out[-1500:] + err[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) == PROCESSES and {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.data.params["seed"] for r in runs) == sorted(str(s) for s in range(PROCESSES))
    for run in runs:
        for key in EPOCH_METRICS:
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1], key
        assert {"test/acc", "test/loss"} <= set(run.data.metrics)
    listed = subprocess.run([sys.executable, "-m", "launcher", "runs"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0 and listed.stdout.count("FINISHED") == PROCESSES, listed.stderr
