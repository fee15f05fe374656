"""A real MLflow store with a `launch train` run and a real `launch sweep` (a parent run with
two trained trials).

Shared by the `launch runs` / `launch compare` tests and the browser test, so its trainings
and its sweep run once per session.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

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
    return make_demo_store(tmp_path_factory.mktemp("demo-store"), empty_store_template)


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
