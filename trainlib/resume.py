"""Find where to resume a run: an MLflow run id, a run folder, or a checkpoint file."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainlib.checkpoint import load_safely
from trainlib.errors import CheckpointError
from trainlib.sources import locate_checkpoint

REQUIRED_KEYS = ("model", "optimizer", "scheduler", "epoch", "rng", "config", "best_valid_acc")


@dataclass
class ResumePoint:
    state: dict[str, Any]
    run_id: str
    run_dir: Path
    fetched: bool = False  # its checkpoints were downloaded from the store: the run continues in output.dir

    @property
    def config(self) -> dict[str, Any]:
        return self.state["config"]


def locate(source: str, tracking_uri: str | None) -> ResumePoint:
    found = locate_checkpoint(source, tracking_uri, default="last")
    state = _checked(load_safely(found.path), found.path)
    run_dir = found.run_dir or found.path.parent.parent
    run_id = found.run_id or state.get("run_id") or run_dir.name
    return ResumePoint(state, str(run_id), run_dir, fetched=found.fetched)


def _checked(state: Any, path: Path) -> dict[str, Any]:
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        raise CheckpointError(f"{path} is not a launch training checkpoint (needs {', '.join(REQUIRED_KEYS)})")
    return state


def refuse_sweep_trial(point: ResumePoint, tracking_uri: str | None) -> None:
    """A sweep's trial is part of the sweep's record, which never changes after the fact: its weights
    go on as a new run (--finetune). Checked in the store that holds the run, when it does."""
    parent = _sweep_parent(point.run_id, tracking_uri)
    if parent:
        raise CheckpointError(f"run {point.run_id} is a trial of the sweep run {parent}, whose record is not changed "
                              f"after the fact; continue its weights as a new run: "
                              f"launch train --finetune {point.run_id}:last")


def _sweep_parent(run_id: str, tracking_uri: str | None) -> str | None:
    from trainlib import tags as tag
    from trainlib.tracking.mlflow_tracker import resolve_tracking_uri, sqlite_file
    from trainlib.tracking.reachable import check_tracking_server

    uri = resolve_tracking_uri(tracking_uri)
    db = sqlite_file(uri)
    if db is not None and not db.is_file():
        return None
    check_tracking_server(uri)
    from mlflow.exceptions import MlflowException

    from trainlib.tracking.mlflow_store import open_store

    try:
        return open_store(uri, create=False).get_run(run_id).data.tags.get(tag.PARENT)
    except MlflowException:  # not a run of this store
        return None
