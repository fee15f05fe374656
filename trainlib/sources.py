"""Find a checkpoint file from what a user typed: a file, a run folder or an MLflow run id.

`RUN_ID:best` / `RUN_ID:last` (also `FOLDER:best|last`) picks the checkpoint; without the
suffix the caller's default is used (finetune and eval: best, resume: last). `latest` stands
for the newest finished run of the tracking store.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainlib import tags as tag
from trainlib.checkpoint import BEST, LAST
from trainlib.errors import CheckpointError

CHECKPOINTS = {"best": BEST, "last": LAST}
LATEST = "latest"


@dataclass(frozen=True)
class Located:
    path: Path
    run_id: str | None  # set when the source was given as an MLflow run id
    run_dir: Path | None  # the run folder, when the checkpoint lies in one
    fetched: bool = False  # downloaded from the store: `run_dir` is a download cache, not the run's folder

    @property
    def home(self) -> Path:
        """Where outputs about this checkpoint go: its run folder, else the file's folder."""
        return self.run_dir or self.path.parent


def split_choice(source: str, default: str) -> tuple[str, str]:
    base, sep, choice = source.rpartition(":")
    return (base, choice) if sep and choice in CHECKPOINTS else (source, default)


def locate_checkpoint(source: str, tracking_uri: str | None, default: str = "best") -> Located:
    base, choice = split_choice(source, default)
    if base == LATEST and not Path(base).exists():
        base = latest_run(tracking_uri)
    path = Path(base).expanduser()
    if path.is_dir():
        folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
        path = _existing(folder / CHECKPOINTS[choice], source)
    if path.is_file():
        return Located(path, None, path.parent.parent if path.parent.name == "checkpoints" else None)
    return _from_run(base, choice, tracking_uri)


def _from_run(ref: str, choice: str, tracking_uri: str | None) -> Located:
    """A run id (or unique prefix): its run folder's checkpoint, else the run's artifact, fetched."""
    from trainlib.errors import ConfigError
    from trainlib.tracking.mlflow_tracker import resolve_tracking_uri
    from trainlib.tracking.reachable import check_tracking_server
    from trainlib.tracking.run_ids import find_run, looks_like_run_id

    uri = resolve_tracking_uri(tracking_uri)
    if not looks_like_run_id(ref):
        raise CheckpointError(f"'{ref}' is no file, no folder, and no run id (list runs with: launch runs)")
    check_tracking_server(uri)  # before importing MLflow: a dead server is one line within seconds

    from trainlib.artifacts_fetch import fetch_checkpoint
    from trainlib.tracking.mlflow_store import open_store

    try:
        client = open_store(uri, create=False)
    except ConfigError as exc:
        raise CheckpointError(f"'{ref}' is no file, no folder, and no run: {exc}") from None
    try:
        run = find_run(client, ref)
    except ConfigError as exc:
        raise CheckpointError(f"'{ref}' is no file, no folder, and {exc}") from None
    run_id = run.info.run_id
    run_dir = run.data.tags.get(tag.RUN_DIR)
    local = Path(run_dir) / "checkpoints" / CHECKPOINTS[choice] if run_dir else None
    if local is not None and local.is_file():
        return Located(local, run_id, Path(run_dir))
    path, fetched_dir = fetch_checkpoint(client, run_id, CHECKPOINTS[choice], local or Path(CHECKPOINTS[choice]))
    return Located(path, run_id, fetched_dir, fetched=True)


def latest_run(tracking_uri: str | None) -> str:
    """The newest finished run of the store that has a run folder (a sweep's parent run has none)."""
    from trainlib.tracking.mlflow_tracker import resolve_tracking_uri, sqlite_file
    from trainlib.tracking.mlflow_store import open_store

    uri = resolve_tracking_uri(tracking_uri)
    none = CheckpointError(f"'{LATEST}': no finished run in {uri} to start from; train one first (launch train) "
                           f"or give a run id, run folder or checkpoint file")
    db = sqlite_file(uri)
    if db and not db.is_file():
        raise none  # reading would create an empty store
    client = open_store(uri, create=False)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, filter_string="attributes.status = 'FINISHED'",
                              order_by=["attributes.end_time DESC"], max_results=100) if experiments else []
    for run in runs:
        if tag.RUN_DIR in run.data.tags:
            return run.info.run_id
    raise none


def _existing(path: Path, source: str) -> Path:
    if not path.is_file():
        raise CheckpointError(f"{source}: checkpoint {path} is missing")
    return path
