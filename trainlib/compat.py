"""The private APIs of Ray, MLflow and tensorboardX this project relies on, one function each,
so an upgrade that moves one breaks this file (and tests/trainlib/test_compat.py) only.

Each library is imported inside its function: trainlib imports no Ray or MLflow at module level.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator


def tune_stop_event() -> threading.Event:
    """Set when Tune stops the calling trial (a scheduler's decision); Ray has no public handle on it."""
    from ray.train._internal.session import get_session

    return get_session().stop_event


@contextlib.contextmanager
def mlflow_global_uri(uri: str) -> Iterator[None]:
    """Point MLflow's global tracking URI at `uri` for a call that takes no client (mlflow.pytorch.log_model),
    restoring it after: thread-safe, unlike mlflow.set_tracking_uri."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(uri):
        yield


def add_summary(writer: Any, summary: Any, step: int) -> None:
    """Write a ready-made Summary proto through a tensorboardX SummaryWriter (e.g. an image already PNG-encoded)."""
    writer._get_file_writer().add_summary(summary, step)
