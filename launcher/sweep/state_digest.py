"""Trust in a sweep folder's Tune state.

`launch sweep --resume` hands the sweep folder to Ray's `Tuner.restore`, which unpickles files
found there (tune/tuner.pkl, the experiment state, searcher and callback state, trials'
params.pkl and error.pkl): whoever can write the folder (a shared disk, a bucket) could run code
in the next resume. The tracking store is trusted, the folder is not: while the sweep runs, each
time Tune saves its state the driver records a sha256 digest of those files on the MLflow parent
run (tag launch.tune_state_sha256), and a resume refuses state that does not match it.
The trials' checkpoints (last.pt) are not covered: they are read with weights_only=True.
"""
from __future__ import annotations

import hashlib

from launcher.sweep.tracking import SweepRun
from trainlib import tags as tag
from trainlib.errors import ConfigError
from trainlib.storage import is_remote

TUNER_STATE = "tuner.pkl"

Signature = tuple[tuple[str, int, int], ...]  # (path in the Tune folder, size, mtime) of each state file


def state_files(tune_dir: str) -> tuple[object, str, Signature]:
    """The files of the Tune folder that a restore may unpickle: every file at its top and every
    .pkl below it. Returns (filesystem, its path of the folder, the files' signature)."""
    import pyarrow.fs as pafs

    filesystem, root = pafs.FileSystem.from_uri(tune_dir) if is_remote(tune_dir) else (pafs.LocalFileSystem(), tune_dir)
    found = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    files = []
    for info in found:
        relative = info.path[len(root.rstrip("/")) + 1:]
        if info.type == pafs.FileType.File and ("/" not in relative or relative.endswith(".pkl")):
            files.append((relative, info.size, info.mtime_ns or 0))
    return filesystem, root, tuple(sorted(files))


def digest(tune_dir: str) -> tuple[str, Signature]:
    """sha256 over the state files' paths and contents, and the signature it was taken at."""
    filesystem, root, signature = state_files(tune_dir)
    total = hashlib.sha256()
    for relative, _, _ in signature:
        with filesystem.open_input_stream(f"{root.rstrip('/')}/{relative}") as stream:
            content = hashlib.sha256(stream.readall()).hexdigest()
        total.update(f"{relative}\0{content}\n".encode())
    return total.hexdigest(), signature


def record_digest(record: SweepRun, tune_dir: str) -> Signature:
    """Record the digest of the Tune state as it is now on the parent run; the signature it covers."""
    value, signature = digest(tune_dir)
    record.client.set_tag(record.parent_run_id, tag.TUNE_STATE_SHA256, value)
    return signature


def check_state(record: SweepRun, sweep_dir: object, tune_dir: str) -> None:
    """Before a restore: the Tune state is the one the sweep recorded, or a ConfigError (nothing was unpickled)."""
    names = [name for name, _, _ in state_files(tune_dir)[2]]
    if TUNER_STATE not in names:
        return  # nothing for Tune to restore: the resume says so itself
    recorded = record.client.get_run(record.parent_run_id).data.tags.get(tag.TUNE_STATE_SHA256)
    if recorded is None or digest(tune_dir)[0] != recorded:
        raise ConfigError(f"refusing to resume {sweep_dir}: its Tune state ({tune_dir}) is not the state this sweep "
                          f"recorded (sha256 in MLflow parent run {record.parent_run_id[:8]}); restoring it would "
                          f"unpickle files someone else may have written. Start the sweep again without --resume")
