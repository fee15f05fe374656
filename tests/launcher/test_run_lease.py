"""One process at a time writes a run: a second `launch train --resume RUN_ID` while the first
holds the run is refused at once with one line; a kill -9'd holder's lease is taken over; a
sweep's trial is never resumed (its sweep's record does not change after the fact)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster_services import launch, one_error
from trainlib.lease import LEASE_FILE


def resume_process(run_id: str, store: str, epochs: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "launcher", "train", "--no-progress", "--tracking-uri", store,
                             "--resume", run_id, "--epochs", str(epochs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_holder(run_dir: Path, proc: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while f"pid {proc.pid} " not in read_lease(run_dir):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the resume never took the run's lease"
        time.sleep(0.05)


def read_lease(run_dir: Path) -> str:
    try:
        return (run_dir / LEASE_FILE).read_text()
    except FileNotFoundError:
        return ""


def epoch_steps(client, run_id: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, "valid/acc")]


@pytest.mark.slow
def test_a_second_resume_of_a_run_being_resumed_is_refused_at_once(tmp_path, default_run_copy):
    run_id, run_dir, store = default_run_copy.run_id, default_run_copy.run_dir, default_run_copy.uri  # 2 epochs done
    client = default_run_copy.client()
    first = resume_process(run_id, store, epochs=3)
    wait_for_holder(run_dir, first)
    first.send_signal(signal.SIGSTOP)  # it holds the run: keep it there while the second one tries
    try:
        second, seconds = launch("train", "--no-progress", "--tracking-uri", store, "--resume", run_id,
                                 "--epochs", "3", cwd=tmp_path)
    finally:
        first.send_signal(signal.SIGCONT)
    line = one_error(second)
    assert "being resumed" in line and f"pid {first.pid}" in line and run_id in line
    assert "epoch" not in second.stdout and seconds < 60
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, out[-1500:] + err[-3000:]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert epoch_steps(client, run_id) == [1, 2, 3]  # each epoch logged once


@pytest.mark.slow
def test_the_lease_of_a_killed_holder_is_taken_over(tmp_path, default_run_copy):
    run_id, run_dir, store = default_run_copy.run_id, default_run_copy.run_dir, default_run_copy.uri  # 2 epochs done
    client = default_run_copy.client()
    crashed = resume_process(run_id, store, epochs=3)
    wait_for_holder(run_dir, crashed)
    os.kill(crashed.pid, signal.SIGKILL)
    crashed.communicate(timeout=60)
    assert f"pid {crashed.pid} " in read_lease(run_dir)  # its lease file stays; its lock went with it
    again, _ = launch("train", "--no-progress", "--tracking-uri", store, "--resume", run_id, "--epochs", "3",
                      cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stdout[-1500:] + again.stderr[-3000:]
    assert client.get_run(run_id).info.status == "FINISHED"
    assert sorted(set(epoch_steps(client, run_id))) == [1, 2, 3]


@pytest.mark.slow
def test_a_sweep_trial_is_not_resumed_and_its_record_stays(demo_store):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=demo_store.uri)
    trial = demo_store.trial_run_ids[0]
    before = client.get_run(trial)
    out, _ = launch("train", "--no-progress", "--tracking-uri", demo_store.uri, "--resume", trial, "--epochs", "4",
                    cwd=demo_store.root)
    line = one_error(out)
    assert "trial of the sweep" in line and f"--finetune {trial}:last" in line
    after = client.get_run(trial)
    assert (after.info.status, after.info.end_time) == (before.info.status, before.info.end_time)
    assert after.data.metrics == before.data.metrics and after.data.tags == before.data.tags
