"""Trust in a sweep folder's Tune state.

`launch sweep --resume` hands the sweep folder to Ray's `Tuner.restore`, which unpickles files
found there (tune/tuner.pkl, the experiment state, searcher and callback state, trials' .pkl
files): whoever can write the folder (a shared disk, a bucket) could run code in the next
resume. The tracking store is trusted, the folder is not: while the sweep runs, the driver
records the sha256 of every version of those files that Tune writes (in its staging folder,
before they are copied to the sweep folder, and in the sweep folder) as the artifact
tune_state.json of the MLflow parent run; a resume refuses a folder holding any state file
whose content is not one the sweep wrote. The trials' checkpoints (last.pt) are not covered:
they are read with weights_only=True.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from launcher.sweep.tracking import SweepRun
from trainlib.errors import ConfigError
from trainlib.output_location import is_remote

STATE_ARTIFACT = "tune_state.json"  # {path in tune/: [sha256 of the versions the sweep wrote, newest last]}
KEEP = 10  # versions kept per file: Tune copies its state to the sweep folder in the background
TUNER_STATE = "tuner.pkl"

Accepted = dict[str, list[str]]
Memo = dict[tuple[str, int, int], str]  # (path, size, mtime) -> sha256: a file unchanged is not read again


def state_hashes(folder: str, memo: Memo) -> dict[str, str]:
    """sha256 of each file of `folder` (a path or a URI) that a restore may unpickle: every file at
    its top and every .pkl below it."""
    import pyarrow.fs as pafs

    filesystem, root = pafs.FileSystem.from_uri(folder) if is_remote(folder) else (pafs.LocalFileSystem(), folder)
    root = root.rstrip("/")
    found = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    hashes = {}
    for info in found:
        relative = info.path[len(root) + 1:]
        if info.type != pafs.FileType.File or ("/" in relative and not relative.endswith(".pkl")):
            continue
        key = (info.path, info.size, info.mtime_ns or 0)
        if key not in memo:
            with filesystem.open_input_stream(info.path) as stream:
                memo[key] = hashlib.sha256(stream.readall()).hexdigest()
        hashes[relative] = memo[key]
    return hashes


def accept(accepted: Accepted, hashes: dict[str, str]) -> bool:
    """Add the versions in `hashes` to `accepted` (the last KEEP per file); whether any was new."""
    changed = False
    for relative, sha in hashes.items():
        versions = accepted.setdefault(relative, [])
        if sha not in versions:
            versions[:] = [*versions, sha][-KEEP:]
            changed = True
    return changed


def save_accepted(record: SweepRun, accepted: Accepted) -> None:
    record.client.log_dict(record.parent_run_id, accepted, STATE_ARTIFACT)


def load_accepted(record: SweepRun) -> Accepted:
    """The versions the sweep recorded; none when it recorded nothing (a sweep started before this check)."""
    with tempfile.TemporaryDirectory(prefix="launch-tune-state-") as scratch:
        try:
            path = record.client.download_artifacts(record.parent_run_id, STATE_ARTIFACT, scratch)
            return json.loads(Path(path).read_text())
        except Exception:  # no such artifact: MLflow raises its own errors or OSError, by store
            return {}


def check_state(record: SweepRun, sweep_dir: Path, tune_dir: str) -> None:
    """Before a restore: every state file is one the sweep wrote, or a ConfigError (nothing was unpickled)."""
    hashes = state_hashes(tune_dir, {})
    if TUNER_STATE not in hashes:
        return  # nothing for Tune to restore: the resume says so itself
    accepted = load_accepted(record)
    for relative, sha in sorted(hashes.items(), key=lambda item: item[0] != TUNER_STATE):
        if sha not in accepted.get(relative, []):
            raise ConfigError(f"refusing to resume {sweep_dir}: tune/{relative} is not a file this sweep wrote "
                              f"(its sha256 is not among those recorded in MLflow parent run "
                              f"{record.parent_run_id[:8]}); restoring it would unpickle it. "
                              f"Start the sweep again without --resume")
