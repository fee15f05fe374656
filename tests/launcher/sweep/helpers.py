"""What the Ray sweep tests share: waiting, sweep files, and reading the sweep's runs back."""
from __future__ import annotations

import time
from pathlib import Path


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f}s for {what}")
        time.sleep(0.2)


def sweep_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(body)
    return path


def layer(tmp_path: Path, store: str) -> dict:
    """The test's store and folder; `output.shared`: the test clusters' nodes all run on this machine,
    so they do share its disk (the multi-node preflight asks for that to be said)."""
    return {"tracking": {"uri": store, "experiment": "test"}, "output": {"dir": str(tmp_path / "runs"), "shared": True},
            "scheduler": "constant"}


def runs_of(client) -> tuple:
    exp = client.get_experiment_by_name("test")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("launch.kind") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children, runs


def steps(client, run, key: str = "train/loss") -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run.info.run_id, key))


def most_at_once(runs) -> int:
    events = sorted([(r.info.start_time, 1) for r in runs] + [(r.info.end_time, -1) for r in runs],
                    key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak
