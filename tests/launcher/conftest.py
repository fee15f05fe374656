"""A real MLflow store with a `launch train` run and a sweep (a parent run with two trained trials).

Shared by the `launch runs` / `launch compare` tests and the browser test, so its three small
trainings run once per session.
"""
from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

EXPERIMENT = "launch"
SWEEP = "optim"
# A good and a bad trial, so the charts and `compare` show a difference.
TRIAL_OPTIMIZERS = ({"name": "adam", "lr": 0.003}, {"name": "sgd", "lr": 0.1})
BATCH_SIZE = 64


@dataclass
class DemoStore:
    root: Path
    uri: str
    experiment_id: str
    train_run_id: str
    parent_run_id: str
    trial_run_ids: list[str]


def make_demo_store(root: Path, template: Path) -> DemoStore:
    from click.testing import CliRunner
    from mlflow import MlflowClient

    from launcher.cli import main
    from launcher.store import PARENT_TAG, SWEEP_TAG
    from tests.conftest import train_args

    shutil.copy(template, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    args = [*train_args(root, uri, "--epochs", "2", "--batch-size", str(BATCH_SIZE)), "--experiment", EXPERIMENT]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    (train_run,) = client.search_runs([exp_id])
    # TODO(lead): replace with a small real `launch sweep` once it is merged.
    parent = client.create_run(exp_id, run_name=f"{SWEEP}-sweep", tags={SWEEP_TAG: SWEEP})
    trial_ids = [train_trial(root, uri, i, optimizer) for i, optimizer in enumerate(TRIAL_OPTIMIZERS)]
    for trial_id in trial_ids:
        client.set_tag(trial_id, PARENT_TAG, parent.info.run_id)
    client.set_terminated(parent.info.run_id, "FINISHED")
    return DemoStore(root, uri, exp_id, train_run.info.run_id, parent.info.run_id, trial_ids)


def train_trial(root: Path, uri: str, index: int, optimizer: dict) -> str:
    from trainlib.config import resolve
    from trainlib.run import run

    run_ids: list[str] = []
    config = {"epochs": 2, "batch_size": BATCH_SIZE, "optimizer": optimizer, "output": {"dir": str(root / "runs")},
              "tracking": {"uri": uri, "experiment": EXPERIMENT, "run_name": f"trial-{index}"}}
    run(resolve([config]), progress=False, echo=lambda _: None, callbacks=[lambda report: run_ids.append(report.run_id)])
    return run_ids[0]


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
