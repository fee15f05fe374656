"""Where a run's files go: a local (or shared) folder, or a filesystem URI such as s3://BUCKET/PATH.

With a URI, each node writes its run folders into a scratch folder of its own (`local_root`)
while the run lasts; Ray's storage layer writes the Tune/Train checkpoints to the URI, the
tracking store keeps the run's artifacts (best.pt, last.pt, reports), and `publish` copies the
finished run folder there, without its checkpoints: each checkpoint is stored once per place
that needs it. No Ray or MLflow import here; pyarrow (a Ray dependency) only in `publish`.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

REMOTE_SCHEMES = ("s3://", "gs://", "gcs://", "abfs://", "abfss://", "hdfs://", "viewfs://")
SCRATCH = "launch-scratch"
NOT_PUBLISHED = ("checkpoints",)  # in the tracking store's artifacts and Ray's checkpoint storage already


def is_remote(location: str) -> bool:
    """A filesystem URI that Ray's storage layer (pyarrow) writes, not a path."""
    return location.startswith(REMOTE_SCHEMES)


def local_root(output_dir: str) -> Path:
    """The folder this node writes run folders into: `output_dir`, or for a URI a scratch folder
    ($LAUNCH_SCRATCH_DIR, else <tmp>/launch-scratch)."""
    if not is_remote(output_dir):
        return Path(output_dir).expanduser().resolve()
    scheme, rest = output_dir.split("://", 1)
    scratch = os.environ.get("LAUNCH_SCRATCH_DIR") or Path(tempfile.gettempdir()) / SCRATCH
    return Path(scratch).expanduser().resolve() / scheme / rest.strip("/")


def child(location: str, *names: str) -> str:
    """`location`/name/...: a path joined as a path, a URI joined with slashes."""
    if is_remote(location):
        return "/".join([location.rstrip("/"), *names])
    return str(Path(location).joinpath(*names))


def parent(location: str) -> str:
    if is_remote(location):
        head, _, _ = location.rstrip("/").rpartition("/")
        return head
    return str(Path(location).parent)


def publish(run_dir: Path, output_dir: str) -> str | None:
    """Copy a finished run folder (but its checkpoints) to a remote output dir; its URI there."""
    if not is_remote(output_dir):
        return None
    import pyarrow.fs as pafs

    target = child(output_dir, run_dir.name)
    filesystem, root = pafs.FileSystem.from_uri(target)
    local = pafs.LocalFileSystem()
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir)
        if path.is_file() and relative.parts[0] not in NOT_PUBLISHED:
            pafs.copy_files(str(path), f"{root}/{relative.as_posix()}", source_filesystem=local,
                            destination_filesystem=filesystem)
    return target
