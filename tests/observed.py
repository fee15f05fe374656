"""Tracked runs shared by the visuals, diagnosis and doctor tests: each is trained once per
test run (cached in tests/shared_runs.py's shared root: once across pytest-xdist workers too) and
read back by many tests."""
from __future__ import annotations

import json
import shutil
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from tests.shared_runs import locked, shared_root

# the default run (visuals and diagnosis at their defaults), shortened to 5 epochs
HEALTHY = {"epochs": 5}


@dataclass
class ObservedRun:
    run_id: str
    store: str
    run_dir: str
    stopped: str | None  # the RunStopped reason, if a check stopped the run
    output: list[str]

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.store)

    def findings(self) -> dict[str, dict[str, Any]]:
        data = json.loads((Path(self.run_dir) / "diagnostics.json").read_text())
        return {f["check"]: f for f in data["findings"]}


@contextmanager
def one_thread() -> Iterator[None]:
    """Train with one torch thread: on a shared 2-core box two threads fight the other
    processes and run several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_once(tmp_path_factory, template: Path, name: str, *layers: dict[str, Any]) -> ObservedRun:
    """Train `name` with config `layers` on the CPU unless this test run already did."""
    cache = shared_root(tmp_path_factory) / "observed" / name / "run.json"
    with locked(cache.parent.with_name(f"{name}.lock")):
        if not cache.exists():
            shutil.rmtree(cache.parent, ignore_errors=True)  # what a training that failed half-way left
            run = _train(cache.parent, template, layers)
            cache.write_text(json.dumps(asdict(run)))
    return ObservedRun(**json.loads(cache.read_text()))


def _train(base: Path, template: Path, layers: tuple[dict[str, Any], ...]) -> ObservedRun:
    from mlflow import MlflowClient

    from trainlib.config import resolve
    from trainlib.errors import RunStopped
    from trainlib.run import run

    base.mkdir(parents=True)
    shutil.copy(template, base / "mlflow.db")
    store = f"sqlite:///{base / 'mlflow.db'}"
    cfg = resolve([{"device": "cpu", "output": {"dir": str(base / "runs")},
                    "tracking": {"uri": store, "experiment": "test"}}, *layers])
    output: list[str] = []
    stopped = None
    try:
        with one_thread():
            run(cfg, progress=False, echo=output.append)
    except RunStopped as exc:
        stopped = str(exc)
    client = MlflowClient(tracking_uri=store)
    (only,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    return ObservedRun(only.info.run_id, store, only.data.tags["launch.run_dir"], stopped, output)


def healthy_run(tmp_path_factory, empty_store_template: Path) -> ObservedRun:
    return train_once(tmp_path_factory, empty_store_template, "healthy", HEALTHY)


def read_events(logdir: Path) -> dict[str, dict[str, list[int]]]:
    """kind -> tag -> steps, over every event file below `logdir` (kind: the value type or plugin)."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    found: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for path in logdir.rglob("events.out.tfevents.*"):
        for event in LegacyEventFileLoader(str(path)).Load():
            if event.HasField("graph_def"):
                found["graph"][str(path.parent.relative_to(logdir))].append(event.step)
            for value in event.summary.value:
                kind = value.metadata.plugin_data.plugin_name or value.WhichOneof("value")
                found[kind][value.tag].append(event.step)
    return found
