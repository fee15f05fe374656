"""A run's text artifacts read back through the run's own artifact URI.

MlflowClient.list_artifacts and download_artifacts(run_id, ...) go through a runs:/ URI: they read the
run again first, and the download also looks for logged models under it: 13 ms a file on a local SQLite
store, against ~1 ms through the run's artifact URI. A sweep's report reads a file of every trial."""
from __future__ import annotations

import posixpath
import tempfile
from pathlib import Path


def artifact_text(tracking_uri: str, run, path: str) -> str | None:
    """The text artifact of `run` (an MLflow Run) at `path` (e.g. "config.yaml"), or None when it has none there."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(run.info.artifact_uri, tracking_uri=tracking_uri)
    listed = repo.list_artifacts(posixpath.dirname(path) or None)
    if not any(entry.path == path and not entry.is_dir for entry in listed):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return Path(repo.download_artifacts(path, tmp)).read_text()
