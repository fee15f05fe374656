"""Where launch keeps what it may rebuild: $LAUNCH_CACHE_DIR, else ~/.cache/launch (fetched runs'
checkpoints: trainlib.artifacts_fetch; the migrated empty MLflow store: trainlib.tracking.mlflow_store)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("LAUNCH_CACHE_DIR") or Path.home() / ".cache" / "launch").expanduser()
