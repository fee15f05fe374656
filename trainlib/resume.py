"""Find where to resume a run: an MLflow run id, a run folder, or a checkpoint file."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainlib.checkpoint import LAST, load_safely
from trainlib.errors import CheckpointError

REQUIRED_KEYS = ("model", "optimizer", "scheduler", "epoch", "rng", "config", "best_valid_acc")


@dataclass
class ResumePoint:
    state: dict[str, Any]
    run_id: str
    run_dir: Path

    @property
    def config(self) -> dict[str, Any]:
        return self.state["config"]


def locate(source: str, tracking_uri: str | None) -> ResumePoint:
    path = Path(source)
    if path.exists():
        return _from_path(path)
    return _from_run_id(source, tracking_uri)


def _from_path(path: Path) -> ResumePoint:
    if path.is_dir():
        path = path / "checkpoints" / LAST if (path / "checkpoints").is_dir() else path / LAST
    run_dir = path.parent.parent
    state = _checked(load_safely(path), path)
    run_id = state.get("run_id") or run_dir.name
    return ResumePoint(state, str(run_id), run_dir)


def _from_run_id(run_id: str, tracking_uri: str | None) -> ResumePoint:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from trainlib.tracking.mlflow_tracker import resolve_tracking_uri
    from trainlib.tracking.open import RUN_DIR_TAG

    uri = resolve_tracking_uri(tracking_uri)
    try:
        run = MlflowClient(uri).get_run(run_id)
    except MlflowException:
        raise CheckpointError(f"cannot resume '{run_id}': no such run in {uri}, and no such file or folder") from None
    run_dir = run.data.tags.get(RUN_DIR_TAG)
    if not run_dir or not (Path(run_dir) / "checkpoints" / LAST).is_file():
        raise CheckpointError(f"cannot resume run {run_id}: its checkpoint folder {run_dir}/checkpoints is missing")
    path = Path(run_dir) / "checkpoints" / LAST
    return ResumePoint(_checked(load_safely(path), path), run_id, Path(run_dir))


def _checked(state: Any, path: Path) -> dict[str, Any]:
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        raise CheckpointError(f"{path} is not a launch training checkpoint (needs {', '.join(REQUIRED_KEYS)})")
    return state
