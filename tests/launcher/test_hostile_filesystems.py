"""A read-only store folder and a full disk, on real filesystems: a tmpfs mounted read-only or
tiny in a private mount namespace (`unshare --mount`, as root: skipped where that is not allowed)."""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def in_namespace(mounts: list[str], command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    script = " && ".join([*mounts, "exec " + shlex.join(command)])
    return subprocess.run(["unshare", "--mount", "sh", "-c", script], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def can_mount(tmp_path_factory):
    probe = tmp_path_factory.mktemp("probe")
    if not shutil.which("unshare"):
        pytest.skip("no unshare")
    done = in_namespace([f"mount -t tmpfs -o size=1m tmpfs {probe}"], ["true"], probe)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def launch(*args: str) -> list[str]:
    return [sys.executable, "-m", "launcher", *args]


@pytest.mark.slow
def test_a_read_only_store_is_one_line_and_leaves_nothing(tmp_path, empty_store_template, can_mount):
    folder = tmp_path / "ro"
    folder.mkdir()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    mounts = [f"mount -t tmpfs -o size=4m tmpfs {folder}", f"cp {empty_store_template} {folder / 'mlflow.db'}",
              f"mount -o remount,ro {folder}"]
    done = in_namespace(mounts, launch("train", "--no-progress", "--epochs", "1", "--tracking-uri", uri), tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"error: MLflow store {folder / 'mlflow.db'} "
                                                                   "is read-only"), done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro"]  # no runs/ folder, no mlflow.db beside it
    listed = in_namespace(mounts, launch("runs", "--tracking-uri", uri), tmp_path)
    assert listed.returncode == 0 and "no runs yet" in listed.stdout, listed.stderr  # reading still works


@pytest.mark.slow
def test_a_read_only_output_dir_is_refused_before_the_default_store_is_created(tmp_path, can_mount):
    folder = tmp_path / "ro"
    folder.mkdir()
    mounts = [f"mount -t tmpfs -o size=1m,ro tmpfs {folder}"]
    done = in_namespace(mounts, launch("train", "--no-progress", "--epochs", "1", "--output-dir", str(folder / "runs")),
                        tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"error: output dir '{folder / 'runs'}' is not writable: {folder} is read-only\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro"]  # no ./mlflow.db


@pytest.mark.slow
def test_a_full_disk_names_the_disk_and_the_file(tmp_path, empty_store_template, can_mount):
    small = tmp_path / "small"
    small.mkdir()
    shutil.copy(empty_store_template, tmp_path / "mlflow.db")
    done = in_namespace([f"mount -t tmpfs -o size=200k tmpfs {small}"],
                        launch("train", "--no-progress", "--epochs", "1", "--output-dir", str(small / "runs"),
                               "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"), tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"error: disk full: no space left on {small} ") and f"writing {small}/runs/" in line

    from mlflow import MlflowClient

    from trainlib.tags import ERROR

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (failed,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    error = failed.data.tags[ERROR]
    assert failed.info.status == "FAILED" and ("disk full" in error or "No space left" in error), error
