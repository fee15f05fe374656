"""`launch train --workers 2` ended from outside, as a user ends it: Ctrl-C (SIGINT to the
terminal's process group) and SIGTERM (to the `launch` process) end it as a single run: the
"interrupted" line, exit 130, the MLflow run KILLED with its checkpoints logged, no Ray or C++
dump; `--resume RUN_ID` continues it to FINISHED (one run lives both: Ctrl-C, resume, SIGTERM,
resume). While it runs, every socket the job listens on is on 127.0.0.1. Real processes, real
signals, a real local Ray (each command's own), real gloo."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import yaml

from tests.conftest import train_args
from tests.processes import command_line, descendants, loaded_torch
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


def wait_for_checkpoint(tmp_path: Path, proc: subprocess.Popen, written: Callable[[], bool] | None = None) -> None:
    """Until the job has written a checkpoint (a first last.pt, or `written` says a new one)."""
    written = written or (lambda: bool(list((tmp_path / "runs").glob("*/checkpoints/last.pt"))))
    deadline = time.time() + 300
    while not written() and proc.poll() is None:
        assert time.time() < deadline, "no checkpoint within 300 s"
        time.sleep(0.2)
    assert proc.poll() is None, "the job ended before it could be interrupted"


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


@dataclass
class Ending:
    """How one interrupted `launch train --workers 2` ended, and its run as it was left."""
    out: str
    err: str
    code: int
    first_epoch: int  # the first epoch this command trained (1, or the one after the resumed checkpoint)
    status: str
    checkpoints: set[str]
    interrupted_at: int  # the last epoch with a valid/acc


@dataclass
class Job:
    """One run as a user lives it: started, ended by Ctrl-C, resumed, ended by SIGTERM, resumed to the end."""
    store: str
    run_id: str
    sockets: list[tuple[str, str]]  # while the first command trained
    processes: dict[int, str]  # the first command's processes while it trained: pid -> command line
    torch_in: set[int]  # those of them that had loaded torch
    console_log: Path
    endings: dict[str, Ending]
    finished: subprocess.CompletedProcess


def ending(client, run_id: str, proc: subprocess.Popen, first_epoch: int) -> Ending:
    out, err = proc.communicate(timeout=120)
    run = client.get_run(run_id)
    return Ending(out, err, proc.returncode, first_epoch, run.info.status,
                  {a.path for a in client.list_artifacts(run_id, "checkpoints")},
                  max(m.step for m in client.get_metric_history(run_id, "valid/acc")))


def resume(store: str, run_id: str) -> list[str]:
    return [sys.executable, "-m", "launcher", "train", "--no-progress", "--tracking-uri", store, "--resume", run_id,
            "--workers", "2"]


@pytest.fixture(scope="module")
def job(tmp_path_factory, empty_store_template) -> Job:
    """Shared by the two tests: each of its three commands starts its own local Ray (~30 s on two cores),
    so the SIGTERM is sent to the resumed job instead of a fourth one."""
    from mlflow import MlflowClient

    tmp_path = tmp_path_factory.mktemp("ddp_interrupt")
    (tmp_path / "store").mkdir()
    shutil.copy(empty_store_template, tmp_path / "store" / "mlflow.db")
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    client = MlflowClient(store)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}

    proc = launch(tmp_path, store, "--epochs", EPOCHS)
    wait_for_checkpoint(tmp_path, proc)
    sockets = listeners(descendants(proc.pid))
    processes = {pid: command_line(pid) for pid in descendants(proc.pid)}
    torch_in = {pid for pid in processes if loaded_torch(pid)}
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    (last,) = (tmp_path / "runs").glob("*/checkpoints/last.pt")
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    endings = {"ctrl-c": ending(client, run.info.run_id, proc, 1)}

    written = last.stat().st_mtime_ns
    proc = subprocess.Popen(resume(store, run.info.run_id), env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_checkpoint(tmp_path, proc, lambda: last.exists() and last.stat().st_mtime_ns != written)
    proc.send_signal(signal.SIGTERM)  # to the `launch` process only
    endings["sigterm"] = ending(client, run.info.run_id, proc, endings["ctrl-c"].interrupted_at)

    finished = subprocess.run(resume(store, run.info.run_id), capture_output=True, text=True, timeout=600, env=env)
    return Job(store, run.info.run_id, sockets, processes, torch_in, tmp_path / "runs" / "ray" / "console.log", endings, finished)


def killed_then_resumed(job: Job, how: str) -> None:
    end = job.endings[how]
    out, err = end.out, end.err
    assert end.code == 130, out + err
    assert err.strip().splitlines()[-1] == "interrupted"
    for dump in ("Traceback", "SIGTERM received", "SIGABRT", "logging.cc"):
        assert dump not in err, err
    for chatter in ("\x1b[", "pid=", "Token authentication", "PreemptionWatcher", "PlacementGroupCleaner"):
        assert chatter not in out + err, out + err  # Ray's own, kept in runs/ray/console.log
    lines = out.splitlines()  # rank 0's lines, as a single run prints them
    assert lines[0].startswith("optimizer: adam lr=") and lines[1].startswith("scheduler: "), out
    assert re.match(rf"epoch +(\d+)/{EPOCHS}  train loss", lines[2]), out
    assert int(re.match(r"epoch +(\d+)", lines[2]).group(1)) >= end.first_epoch, out  # 1, or where it resumed
    assert "Token authentication is enabled" in job.console_log.read_text()  # the chatter kept off the console
    assert end.status == "KILLED"
    assert end.checkpoints == {"checkpoints/best.pt", "checkpoints/last.pt"}
    assert end.first_epoch <= end.interrupted_at < int(EPOCHS)

    resumed = job.finished
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    from mlflow import MlflowClient

    client = MlflowClient(job.store)
    after = client.get_run(job.run_id)
    assert after.info.status == "FINISHED" and "test/acc" in after.data.metrics
    steps = [m.step for m in client.get_metric_history(job.run_id, "train/loss")]
    assert sorted(set(steps)) == list(range(1, int(EPOCHS) + 1))


def test_ctrl_c_ends_a_two_worker_job_killed_on_loopback_sockets_and_resume_finishes_it(job):
    assert any("RayTrainWo" in owner for _, owner in job.sockets), job.sockets  # the workers' own (gloo, TCPStore)
    assert [s for s in job.sockets if s[0] not in LOOPBACK] == []
    assert job.endings["ctrl-c"].first_epoch == 1
    killed_then_resumed(job, "ctrl-c")


def test_sigterm_ends_a_two_worker_job_killed_and_resume_finishes_it(job):
    """SIGTERM of the job resumed after the Ctrl-C: it ends KILLED again, later, and resumes again."""
    assert job.endings["sigterm"].interrupted_at > job.endings["ctrl-c"].interrupted_at
    killed_then_resumed(job, "sigterm")


def test_a_job_on_its_own_ray_runs_without_cluster_helpers_and_its_controller_without_torch(job):
    """No dashboard or API server, no autoscaler coordinator or monitor, no placement-group cleaner
    (launcher.cluster.own_instance, local_ray.unused_services), but the log monitor, which brings rank 0's
    lines to the console. Ray Train's controller never imports torch (launcher.cluster.loopback_backend).
    Each left out was ~0.3-1.6 CPU-s of the job's start."""
    names = {pid: line.split()[0].split(".")[0] for pid, line in job.processes.items() if line}  # ray::Actor.method
    by_name = {name: pid for pid, name in names.items()}
    assert {"ray::TrainController", "ray::RayTrainWorker", "ray::SynchronizationActor"} <= set(by_name), names
    assert not {"ray::PlacementGroupCleaner", "ray::_AutoscalingCoordinatorActor"} & set(by_name), names
    assert not [line for line in job.processes.values() if "ray-dashboard-" in line or "NodeHead" in line]
    assert not [line for line in job.processes.values() if "/dashboard/dashboard.py" in line]
    assert not [line for line in job.processes.values() if "/autoscaler/_private/monitor.py" in line]
    assert [line for line in job.processes.values() if "/_private/log_monitor.py" in line]  # rank 0's lines pass it
    workers = {pid for pid, name in names.items() if name == "ray::RayTrainWorker"}
    assert len(workers) == 2 and workers <= job.torch_in  # the check sees torch where it is
    assert by_name["ray::TrainController"] not in job.torch_in


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
