"""A run's checkpoint from the tracking store, for a machine that never saw its run folder.

The store is the source of truth: `finish` logs best.pt and last.pt as the run's artifacts
(`checkpoints/`). When the run folder its tag names is not here, the file is downloaded into
a local cache (one line on stderr says so); callers read it with `load_safely`, like any other.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from trainlib.errors import CheckpointError

ARTIFACT_DIR = "checkpoints"


def cache_root() -> Path:
    """$LAUNCH_CACHE_DIR, else ~/.cache/launch: fetched runs live in <root>/runs/<run id>/."""
    return Path(os.environ.get("LAUNCH_CACHE_DIR") or Path.home() / ".cache" / "launch").expanduser()


def fetch_checkpoint(client, run_id: str, name: str, missing: Path) -> tuple[Path, Path]:
    """Download artifact checkpoints/<name> of the run; returns (checkpoint file, its run folder)."""
    run_dir = cache_root() / "runs" / run_id
    target = run_dir / ARTIFACT_DIR / name
    if target.is_file():
        return target, run_dir
    artifact = f"{ARTIFACT_DIR}/{name}"
    if not any(f.path == artifact for f in client.list_artifacts(run_id, ARTIFACT_DIR)):
        raise CheckpointError(f"run {run_id}: checkpoint {missing} is not on this machine and the run has no "
                              f"artifact {artifact} in {client.tracking_uri} (it logs them when it finishes)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as scratch:
        downloaded = Path(client.download_artifacts(run_id, artifact, scratch))
        os.replace(downloaded, target)  # whole or not at all: an interrupted download leaves no file
    print(f"checkpoint {missing} is not on this machine: downloaded {artifact} of run {run_id[:8]} from "
          f"{client.tracking_uri} to {target}", file=sys.stderr)
    return target, run_dir

