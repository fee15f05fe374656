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
