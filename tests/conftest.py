"""Shared fixtures: an isolated working dir, a fresh real MLflow SQLite store, fast run configs,
a tiny CIFAR-10 python release, the session's Ray and S3 server, the shared default tracked run."""
from __future__ import annotations

import gc
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.data_files import write_cifar_release
from tests.shared_runs import assert_unchanged, built_once, forget_artifact_locations, relocated_copy

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Processes the tests start (Ray workers among them) import `tests` as this one does: pytest
    puts the checkout on sys.path only, and `pip install -e .` installs launcher/ and trainlib/."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    # A full collection of this process's heap (torch, MLflow, Ray, every test module: 1.2-1.8M
    # objects) takes 0.3-0.8 s and finds next to nothing; at the default thresholds the fast lane made
    # ~20 of them (8 s of its ~120 s). Ten times fewer: the lane took 109 s, with ~200 MB more memory.
    gc.set_threshold(700, 10, 1000)


# Tests that start a Ray of their own (`ray start` nodes, or a `launch sweep` / `launch train --workers`
# process with its own local Ray), by node id prefix.
OWN_RAY = ("tests/launcher/test_cluster.py", "tests/launcher/sweep/test_sweep_ray.py",
           "tests/launcher/sweep/test_sweep_faults.py", "tests/launcher/test_ddp_interrupt.py",
           "tests/launcher/test_local_ray.py::test_a_local_ray_prestarts_no_idle_workers_and_runs_no_monitors")
# Session set-ups that start a Ray: the session's Ray, and the demo store's `launch sweep`.
RAY_FIXTURES = {"local_ray", "demo_store", "mlflow_service"}


def starts_ray(item: pytest.Item) -> bool:
    return item.nodeid.startswith(OWN_RAY) or bool(RAY_FIXTURES & set(getattr(item, "fixturenames", ())))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the session's `local_ray` run last, one after another (the sort is stable):
    the Ray starts once, and no other test runs in a process where Ray is initialised.
    Under pytest-xdist (`-n 2 --dist loadgroup`) every test that starts a Ray, its own or the
    session's, is in one group: one worker runs them one after another, so two Rays never start at
    once on two cores and only that worker starts the session's Ray and builds the demo store."""
    items.sort(key=lambda item: "local_ray" in getattr(item, "fixturenames", ()))
    for item in items:
        if starts_ray(item):
            item.add_marker(pytest.mark.xdist_group("ray"))


@pytest.fixture(scope="session")
def local_ray() -> str:
    """One local Ray on 127.0.0.1 for every test that only schedules work on it; its GCS address.
    Sized for the most demanding: 3 CPUs (a 2-worker DDP job and its Tune trial), the dashboard
    (Ray Train frees a stopped trial's workers through it). Tests that kill Ray's processes or need
    several nodes start their own cluster (tests/cluster_services.py)."""
    import ray

    from launcher.cluster.local_ray import start_local_ray

    context = start_local_ray(num_cpus=3, include_dashboard=True, log_to_driver=False, logging_level="WARNING")
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture(scope="session")
def s3_service(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One moto S3 server on 127.0.0.1 for the session; the environment pointing boto3, pyarrow and
    MLflow at it. Each user makes its own bucket."""
    from tests.cluster_services import s3_server

    service, env = s3_server(tmp_path_factory.mktemp("s3"))
    yield env
    service.stop()


@pytest.fixture(autouse=True)
def isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run every test in its own folder with no inherited MLflow settings."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return tmp_path


@pytest.fixture
def collector():
    """The garbage collector on and nothing frozen, as in a fresh `launch` process; afterwards as it was."""
    was_enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    gc.unfreeze()
    gc.enable()
    yield
    gc.unfreeze()
    if frozen:
        gc.freeze()
    if not was_enabled:
        gc.disable()
    else:
        gc.enable()


@pytest.fixture(scope="session")
def empty_store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Create (migrate) one empty MLflow SQLite store per session; tests get copies."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("store-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(tmp_path: Path, empty_store_template: Path) -> str:
    """A real, empty MLflow tracking store (SQLite) for this test."""
    path = tmp_path / "store" / "mlflow.db"
    path.parent.mkdir()
    shutil.copy(empty_store_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def client(store: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store)


@pytest.fixture
def run_config(tmp_path: Path, store: str):
    """Build a small train-config layer writing into this test's store and folder."""

    def make(**overrides: Any) -> dict[str, Any]:
        from trainlib.config import merge

        base = {"epochs": 2, "output": {"dir": str(tmp_path / "runs")},
                "tracking": {"uri": store, "experiment": "test"}}
        return merge(base, overrides)

    return make


def train_args(tmp_path: Path, store: str, *extra: str) -> list[str]:
    """CLI args for a small tracked `launch train` in this test's folder and store."""
    return ["train", "--no-progress", "--tracking-uri", store, "--experiment", "test",
            "--output-dir", str(tmp_path / "runs"), *extra]


@pytest.fixture(scope="session")
def cifar_release(tmp_path_factory) -> Path:
    """An extracted cifar-10-batches-py folder (read-only for tests: copy before changing)."""
    return write_cifar_release(tmp_path_factory.mktemp("cifar"))


@pytest.fixture(scope="session")
def cifar_archive(cifar_release: Path) -> Path:
    """cifar-10-python.tar.gz holding cifar-10-batches-py/, as distributed."""
    archive = cifar_release.parent / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(cifar_release, arcname="cifar-10-batches-py")
    return archive


@dataclass
class TrackedRun:
    """A finished tracked run: its store folder (mlflow.db, mlartifacts/, runs/), URI, id, run folder
    and what `launch train` printed."""
    root: Path
    uri: str
    run_id: str
    run_dir: Path
    output: str

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def copy_to(self, folder: Path) -> TrackedRun:
        """The same run in a relocated copy of its store (tests/shared_runs.py), for a test that writes."""
        relocated_copy(self.root, folder)
        forget_artifact_locations(self.run_id)
        return TrackedRun(folder, f"sqlite:///{folder / 'mlflow.db'}", self.run_id,
                          folder / self.run_dir.relative_to(self.root), self.output)


DEFAULT_RUN_EPOCHS = 2


def train_default_run(root: Path, template: Path) -> dict[str, str]:
    from click.testing import CliRunner
    from mlflow import MlflowClient

    from launcher.cli import main

    shutil.copy(template, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        result = CliRunner().invoke(main, train_args(root, uri, "--epochs", str(DEFAULT_RUN_EPOCHS)),
                                    catch_exceptions=False)
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    return {"run_id": run.info.run_id, "run_dir": run.data.tags["launch.run_dir"], "output": result.output}


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory, empty_store_template: Path) -> TrackedRun:
    """One tracked `launch train --epochs 2` at every other default (net on digits, sgd, visuals,
    diagnosis, MLflow model logging) in experiment `test`, trained once per test run (once across
    pytest-xdist workers too). READ-ONLY: a test that writes to its store or folders (eval outputs,
    `--log`, a registered model, a resume, a report) takes `default_run_copy`; the session's end
    fails when any of its files changed."""
    root, data = built_once(tmp_path_factory, "default-run", lambda folder: train_default_run(
        folder, empty_store_template))
    built = data["built"]
    yield TrackedRun(root, f"sqlite:///{root / 'mlflow.db'}", built["run_id"], Path(built["run_dir"]), built["output"])
    assert_unchanged(root, data["digest"], "default_run")


@pytest.fixture
def default_run_copy(default_run: TrackedRun, tmp_path: Path) -> TrackedRun:
    """The shared default run in this test's own relocated copy of its store: free to change."""
    yield default_run.copy_to(tmp_path / "default-run")
    forget_artifact_locations(default_run.run_id)
