"""A `launch sweep` on its own local Ray, interrupted (kill -9 of the driver, or Ctrl-C), then
`--resume`: each unfinished trial continues from its last checkpoint in its own MLflow child run,
nothing is left RUNNING, and no process of the interrupted driver outlives it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from launcher.cluster.ray_reaper import alive, descendants
from tests.launcher.sweep.helpers import runs_of, steps, sweep_file, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SWEEP = """\
name: faults
base: {epochs: 3, batch_size: 256, scheduler: {name: constant}}
space:
  seed: {grid: [0, 1]}
tune: {search: grid, num_samples: 1, max_concurrent_trials: 2}
resources: {cpu: 0.5}
"""


def every_run(client) -> list:
    exp = client.get_experiment_by_name("test")
    return client.search_runs([exp.experiment_id], run_view_type=3, max_results=1000)  # ViewType.ALL


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill -9", "ctrl-c"])
def test_an_interrupted_sweep_resumes_each_trial_in_its_own_run(tmp_path, store, client, sig):
    path = sweep_file(tmp_path, SWEEP)
    args = [sys.executable, "-m", "launcher", "sweep", str(path), "--tracking-uri", store, "--experiment", "test",
            "--output-dir", str(tmp_path / "runs")]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    driver = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    started: set = set()

    def both_trials_past_epoch_1() -> bool:
        started.update(descendants(driver.pid))
        assert driver.poll() is None, driver.communicate()
        _, children, _ = runs_of(client) if client.get_experiment_by_name("test") else (None, [], None)
        return len(children) == 2 and all(steps(client, c) for c in children)

    wait_for(both_trials_past_epoch_1, 400, "both trials past epoch 1")
    driver.send_signal(sig)
    driver.communicate(timeout=120)
    interrupted_at = time.time() * 1000
    _, cut, _ = runs_of(client)
    wait_for(lambda: not alive(started), 30, "the interrupted driver's processes to end")

    resumed = subprocess.Popen([*args, "--resume"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    resumed_started: set = set()
    while resumed.poll() is None:
        resumed_started.update(descendants(resumed.pid))
        time.sleep(0.5)
    out, err = resumed.communicate()
    assert resumed.returncode == 0, out[-2000:] + err[-3000:]
    wait_for(lambda: not alive(resumed_started), 30, "the resumed sweep's processes to end")

    runs = every_run(client)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(c.info.run_id for c in children) == sorted(c.info.run_id for c in cut), "one child run per trial"
    assert {r.info.status for r in runs} == {"FINISHED"}
    for child in children:
        assert sorted(set(steps(client, child))) == [1, 2, 3]
        first = min(client.get_metric_history(child.info.run_id, "train/loss"), key=lambda m: m.step)
        assert first.timestamp < interrupted_at, "epoch 1 was not trained again"
