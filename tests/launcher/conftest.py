"""A real MLflow store with a `launch train` run and a real `launch sweep` (a parent run with
two trained trials), and one `mlflow server` serving a copy of it.

Shared by the `launch runs` / `compare` / `report` tests and the browser tests, so its trainings
and its sweep run once per test run (once across pytest-xdist workers too).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.shared_runs import assert_unchanged, built_once, relocated_copy
from trainlib import tags as tag

EXPERIMENT = "launch"
SWEEP = "optim"
BATCH_SIZE = 64
# Adam and SGD trials (a good and a weaker one), so the charts and `compare` show a difference;
# one at a time, so the second trial is the newest run.
SWEEP_FILE = f"""\
name: {SWEEP}
base: {{epochs: 2, batch_size: {BATCH_SIZE}, optimizer: {{name: adam, lr: 0.003}}}}
space:
  optimizer.name: {{grid: [adam, sgd]}}
tune: {{search: grid, num_samples: 1, max_concurrent_trials: 1}}
"""


@dataclass
class DemoStore:
    root: Path
    uri: str
    experiment_id: str
    train_run_id: str
    parent_run_id: str
    trial_run_ids: list[str]
    parent_name: str
    trial_names: list[str]


def make_demo_store(root: Path, template: Path) -> DemoStore:
    from click.testing import CliRunner
    from mlflow import MlflowClient

    from launcher.cli import main
    from tests.conftest import train_args

    shutil.copy(template, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    args = [*train_args(root, uri, "--epochs", "2", "--batch-size", str(BATCH_SIZE)), "--experiment", EXPERIMENT]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    (train_run,) = client.search_runs([exp_id])
    run_sweep(root, uri)
    (parent,) = client.search_runs([exp_id], filter_string="tags.`launch.kind` = 'sweep'")
    trials = client.search_runs([exp_id], filter_string=f"tags.`{tag.PARENT}` = '{parent.info.run_id}'",
                                order_by=["attributes.start_time ASC"])
    assert [t.info.status for t in trials] == ["FINISHED", "FINISHED"]
    return DemoStore(root, uri, exp_id, train_run.info.run_id, parent.info.run_id, [t.info.run_id for t in trials],
                     parent.info.run_name, [t.info.run_name for t in trials])


def run_sweep(root: Path, uri: str) -> None:
    """`launch sweep` as a user runs it (its own process: its own local Ray)."""
    (root / "sweep.yaml").write_text(SWEEP_FILE)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-m", "launcher", "sweep", str(root / "sweep.yaml"), "--tracking-uri", uri,
                           "--experiment", EXPERIMENT, "--output-dir", str(root / "runs")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "\nreport:  " in done.stdout  # the sweep ends with its HTML report's path


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory, empty_store_template: Path) -> DemoStore:
    """READ-ONLY (the session's end fails when any of its files changed): a test that writes to it,
    a `launch report` that logs its page on the run included, takes a relocated copy
    (tests/shared_runs.py) or reads it through `mlflow_service`."""
    root, data = built_once(tmp_path_factory, "demo-store", lambda folder: {
        k: str(v) if isinstance(v, Path) else v for k, v in asdict(make_demo_store(folder, empty_store_template)).items()})
    yield DemoStore(**{**data["built"], "root": root})
    assert_unchanged(root, data["digest"], "demo_store")


@pytest.fixture(scope="session")
def mlflow_service(tmp_path_factory: pytest.TempPathFactory, demo_store: DemoStore) -> tuple[str, Path]:
    """One `mlflow server` on 127.0.0.1 for the tests that only read and write through a server: it
    serves a copy of the demo store (the same run ids), its new artifacts proxied to a folder. Its
    URL and the copy's folder. Tests that stop a server keep their own (test_tracking_server_loss),
    and so does test_cluster (its server's artifacts go to the cluster's S3 bucket)."""
    from tests.cluster_services import mlflow_server

    root = relocated_copy(demo_store.root, tmp_path_factory.mktemp("mlflow-service") / "store")
    os.replace(root / "mlflow.db", root / "server.db")
    service, url = mlflow_server(root, str(root / "served-artifacts"))
    yield url, root
    service.stop()


def port_open(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((parsed.hostname, parsed.port)) == 0


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes with `text` in an argument (to catch orphaned servers)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(text in arg for arg in args):
            found.append(" ".join(args))
    return found
