"""`launch train --workers 2` ended from outside, as a user ends it: Ctrl-C (SIGINT to the
terminal's process group) and SIGTERM (to the `launch` process) end it as a single run: the
"interrupted" line, exit 130, the MLflow run KILLED with its checkpoints logged, no Ray or C++
dump; `--resume RUN_ID` continues it to FINISHED. While it runs, every socket the job listens on
is on 127.0.0.1. Real processes, real signals, a real local Ray (the command's own), real gloo."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import train_args
from tests.trainlib.test_distributed import EXACT

pytestmark = pytest.mark.slow

EPOCHS = "40"  # a fraction of a second each: the job is still training when the signal comes
LOOPBACK = ("127.0.0.1", "[::ffff:127.0.0.1]")


def launch(tmp_path: Path, store: str, *extra: str) -> subprocess.Popen:
    """`launch train --workers 2` in its own session (a terminal's foreground process group)."""
    (tmp_path / "exact.yaml").write_text(yaml.safe_dump(EXACT))
    args = train_args(tmp_path, store, "--config", str(tmp_path / "exact.yaml"), "--workers", "2", *extra)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.Popen([sys.executable, "-m", "launcher", *args], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_checkpoint(tmp_path: Path, proc: subprocess.Popen) -> None:
    deadline = time.time() + 300
    while not list((tmp_path / "runs").glob("*/checkpoints/last.pt")) and proc.poll() is None:
        assert time.time() < deadline, "no checkpoint within 300 s"
        time.sleep(0.2)
    assert proc.poll() is None, "the job ended before it could be interrupted"


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        found.add(todo[-1])
        todo.extend(children.get(todo.pop(), []))
    return found


def listeners(pids: set[int]) -> list[tuple[str, str]]:
    """(local address, process) of every TCP socket `pids` listen on, from `ss -ltnpH`."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        owners = {int(part.split("=")[1]) for part in fields[-1].split(",") if part.startswith("pid=")}
        if owners & pids:
            found.append((fields[3].rsplit(":", 1)[0], fields[-1]))
    return found


def killed_then_resumed(tmp_path: Path, store: str, client, out: str, err: str, code: int) -> None:
    assert code == 130, out + err
    assert err.strip().splitlines()[-1] == "interrupted"
    for dump in ("Traceback", "SIGTERM received", "SIGABRT", "logging.cc"):
        assert dump not in err, err
    for chatter in ("\x1b[", "pid=", "Token authentication", "PreemptionWatcher", "PlacementGroupCleaner"):
        assert chatter not in out + err, out + err  # Ray's own, kept in runs/ray/console.log
    lines = out.splitlines()  # rank 0's lines, as a single run prints them
    assert lines[0].startswith("optimizer: adam lr=") and lines[1].startswith("scheduler: "), out
    assert lines[2].startswith("epoch   1/40  train loss"), out
    assert "(TrainController pid=" in (tmp_path / "runs" / "ray" / "console.log").read_text()
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert run.info.status == "KILLED"
    assert {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")} == {
        "checkpoints/best.pt", "checkpoints/last.pt"}
    interrupted_at = max(m.step for m in client.get_metric_history(run.info.run_id, "valid/acc"))
    assert interrupted_at < int(EPOCHS)

    resumed = subprocess.run([sys.executable, "-m", "launcher", "train", "--no-progress", "--tracking-uri", store,
                              "--resume", run.info.run_id, "--workers", "2"], capture_output=True, text=True,
                             timeout=600, env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    after = client.get_run(run.info.run_id)
    assert after.info.status == "FINISHED" and "test/acc" in after.data.metrics
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert sorted(set(steps)) == list(range(1, int(EPOCHS) + 1))


def test_ctrl_c_ends_a_two_worker_job_killed_on_loopback_sockets_and_resume_finishes_it(tmp_path, store, client):
    proc = launch(tmp_path, store, "--epochs", EPOCHS)
    wait_for_checkpoint(tmp_path, proc)
    sockets = listeners(descendants(proc.pid))
    assert any("RayTrainWo" in owner for _, owner in sockets), sockets  # the workers' own (gloo, TCPStore)
    assert [s for s in sockets if s[0] not in LOOPBACK] == []

    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, err = proc.communicate(timeout=120)
    killed_then_resumed(tmp_path, store, client, out, err, proc.returncode)


def test_sigterm_ends_a_two_worker_job_killed_and_resume_finishes_it(tmp_path, store, client):
    proc = launch(tmp_path, store, "--epochs", EPOCHS)
    wait_for_checkpoint(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    killed_then_resumed(tmp_path, store, client, out, err, proc.returncode)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a machine without GPUs")
def test_more_gpus_than_the_machine_has_are_refused_at_once_with_the_figures(tmp_path, store):
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "launcher", *train_args(tmp_path, store, "--workers", "4",
                                                                         "--gpus-per-worker", "1")],
                          capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
    seconds = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: the DDP job asks for 4 GPUs") and "this machine has 0 GPUs" in line
    assert seconds < 15
    assert not (tmp_path / "runs").exists()
