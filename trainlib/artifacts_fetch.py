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

from trainlib.cache import cache_root  # fetched runs live in <root>/runs/<run id>/
from trainlib.checkpoint import BEST, LAST
from trainlib.errors import CheckpointError

ARTIFACT_DIR = "checkpoints"


def fetch_checkpoint(client, run_id: str, name: str, missing: Path) -> tuple[Path, Path]:
    """Download artifact checkpoints/<name> of the run; returns (checkpoint file, its run folder).

    With last.pt comes best.pt: a run resumed from it continues that folder, whose best.pt it
    logs again at the end even when no later epoch beats it."""
    run_dir = cache_root() / "runs" / run_id
    logged = {Path(f.path).name for f in client.list_artifacts(run_id, ARTIFACT_DIR)}
    if name not in logged:
        raise CheckpointError(f"run {run_id}: checkpoint {missing} is not on this machine and the run has no "
                              f"artifact {ARTIFACT_DIR}/{name} in {client.tracking_uri} (it logs them when it finishes)")
    for wanted in [name, *([BEST] if name == LAST and BEST in logged else [])]:
        target = run_dir / ARTIFACT_DIR / wanted
        if not target.is_file():
            download(client, run_id, f"{ARTIFACT_DIR}/{wanted}", target)
            print(f"checkpoint {missing.parent / wanted} is not on this machine: downloaded {ARTIFACT_DIR}/{wanted} "
                  f"of run {run_id[:8]} from {client.tracking_uri} to {target}", file=sys.stderr)
    return run_dir / ARTIFACT_DIR / name, run_dir


def download(client, run_id: str, artifact: str, target: Path) -> None:
    """Whole or not at all: an interrupted download leaves no file behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as scratch:
        os.replace(client.download_artifacts(run_id, artifact, scratch), target)
