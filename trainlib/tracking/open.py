"""Open a run's trackers (MLflow + TensorBoardX, as configured) and its run folder."""
from __future__ import annotations

import re
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from trainlib import tags as tag
from trainlib.config import TrainConfig
from trainlib.output_location import local_root
from trainlib.tracking.base import MultiTracker, Tracker
from trainlib.validation import MAX_NAME_LENGTH



@dataclass
class RunHandle:
    tracker: Tracker
    run_id: str
    run_dir: Path
    tracking_uri: str | None

    @property
    def tensorboard_dir(self) -> Path:
        return self.run_dir / "tb"

    def summary(self) -> list[str]:
        lines = [f"run id:          {self.run_id}", f"run folder:      {self.run_dir}"]
        if self.tensorboard_dir.exists():
            lines.append(f"TensorBoard:     tensorboard --logdir {self.tensorboard_dir}")
        if self.tracking_uri:
            from trainlib.tracking.mlflow_tracker import ui_hint

            lines.append(f"MLflow UI:       {ui_hint(self.tracking_uri)}")
        return lines


def default_run_name(cfg: TrainConfig) -> str:
    return f"{cfg.model['name']}-{cfg.data['name']}-{time.strftime('%Y%m%d-%H%M%S')}"


def folder_name(run_name: str) -> str:
    """A run name as one folder name: config names already are; a store's older names may not be."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_name).lstrip("._-")[:MAX_NAME_LENGTH] or "run"


def move_into(source: Path, target: Path) -> None:
    """Move the files of the folder `source` into `target` (same layout), then remove `source`."""
    for path in sorted(source.rglob("*")):
        if path.is_file():
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target / path.relative_to(source))
    shutil.rmtree(source, ignore_errors=True)


def open_trackers(cfg: TrainConfig, tags: dict[str, str], resume=None, start_epoch: int = 0) -> RunHandle:
    from trainlib.diskspace import check_can_write, check_writable
    from trainlib.tracking.mlflow_tracker import MlflowTracker, resolve_tracking_uri
    from trainlib.tracking.mlflow_store import open_store
    from trainlib.tracking.tensorboard import TensorBoardTracker

    check_can_write(local_root(cfg.output.dir))  # before the store is created: a bad folder leaves no store
    client = open_store(cfg.tracking.uri, create=True) if cfg.tracking.mlflow else None  # before any folder
    check_writable(local_root(cfg.output.dir))
    trackers: list[Tracker] = []
    uri = None
    run_name = cfg.tracking.run_name or default_run_name(cfg)
    if client is not None:
        uri = resolve_tracking_uri(cfg.tracking.uri)
        mlf = MlflowTracker(client, uri, cfg.tracking.experiment, run_name=run_name,
                            run_id=resume.run_id if resume else None, tags=tags,
                            epochs=cfg.epochs, retry_s=cfg.tracking.server_retry_s)
        trackers.append(mlf)
        run_id, run_name = mlf.run_id, mlf.run_name  # a resumed run's own name
    else:
        run_id = resume.run_id if resume else uuid.uuid4().hex
    if resume is not None and not resume.fetched:
        run_dir = resume.run_dir
    else:
        run_dir = local_root(cfg.output.dir) / f"{folder_name(run_name)}-{run_id[:8]}"
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume is not None and resume.fetched:  # the run continues here, not in the download cache
        move_into(resume.run_dir, run_dir)
    if cfg.tracking.tensorboard:  # first: an epoch's metrics are on disk before a tracking server is asked
        trackers.insert(0, TensorBoardTracker(run_dir / "tb", purge_step=start_epoch + 1 if resume else None))
    tracker = MultiTracker(trackers)
    tracker.set_tags({tag.RUN_DIR: str(run_dir)})
    return RunHandle(tracker, run_id, run_dir, uri)


@contextmanager
def closing(tracker: Tracker, checkpoints: Sequence[Path] = ()) -> Iterator[Tracker]:
    """End the run FINISHED, KILLED on an interrupt, or FAILED with the error as the `launch.error` tag.
    An interrupted run's `checkpoints` (those on disk) become its artifacts first, as a finished run's
    are: `--resume RUN_ID` then works from a machine that never had the run folder. (Not on a
    failure: a dead tracking server would keep the error waiting behind upload retries.)"""
    try:
        yield tracker
    except (KeyboardInterrupt, SystemExit) as exc:  # stopped from outside: Ctrl-C, SIGTERM, Tune stopping a trial
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C, SIGTERM: a run someone means to resume
            keep_checkpoints(tracker, checkpoints)
        tracker.close("KILLED")
        raise
    except BaseException as exc:
        tracker.set_tags({tag.ERROR: f"{type(exc).__name__}: {exc}"[:5000]})
        tracker.close("FAILED")
        raise
    tracker.close("FINISHED")


def keep_checkpoints(tracker: Tracker, checkpoints: Sequence[Path]) -> None:
    for path in checkpoints:
        if not path.is_file():
            continue
        try:
            tracker.log_artifact(path, "checkpoints")
        except Exception:  # the store may be what failed: the run's own error is the one that is raised
            return
