"""Trust in a sweep folder's Tune state.

`launch sweep --resume` hands the sweep folder to Ray's `Tuner.restore`, which unpickles files
found there (tune/tuner.pkl, the experiment state, searcher and callback state, trials' .pkl
files): whoever can write the folder (a shared disk, a bucket) could run code in the next
resume. The tracking store is trusted, the folder is not: while the sweep runs, the driver
records the sha256 of every version of those files that Tune writes (in its staging folder,
before they are copied to the sweep folder, and in the sweep folder) as the artifact
tune_state.json of the MLflow parent run, and keeps a copy of the newest versions it recorded
(tune-recorded/, each named by its sha256). Tune saves before the driver can record, so a driver
killed in between leaves a version no record vouches for: a resume sets such a file aside
(tune-unrecorded/) and puts back the newest recorded copy whose content still matches its
record, losing at most Tune's last step; a file with no such copy is refused. The trials'
checkpoints (last.pt) are not covered: they are read with weights_only=True.
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
COPIES = 2  # recorded versions per file kept as copies to resume from
TUNER_STATE = "tuner.pkl"

Accepted = dict[str, list[str]]
Memo = dict[tuple[str, int, int], str]  # (path, size, mtime) -> sha256: a file unchanged is not read again


def copies_dir(tune_dir: str) -> str:
    """Where the sweep keeps copies of the state versions it recorded: beside tune/."""
    return tune_dir + "-recorded"


def aside_dir(tune_dir: str) -> str:
    """Where a resume moves the state files the sweep did not record."""
    return tune_dir + "-unrecorded"


def filesystem_of(folder: str):
    """(pyarrow filesystem, path in it) of a folder given as a path or a URI."""
    import pyarrow.fs as pafs

    filesystem, root = pafs.FileSystem.from_uri(folder) if is_remote(folder) else (pafs.LocalFileSystem(), folder)
    return filesystem, root.rstrip("/")


def state_hashes(folder: str, memo: Memo, read: dict[str, bytes] | None = None) -> dict[str, str]:
    """sha256 of each file of `folder` (a path or a URI) that a restore may unpickle: every file at
    its top and every .pkl below it. `read` collects the contents read this time, by sha256."""
    import pyarrow.fs as pafs

    filesystem, root = filesystem_of(folder)
    found = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    hashes = {}
    for info in found:
        relative = info.path[len(root) + 1:]
        if info.type != pafs.FileType.File or ("/" in relative and not relative.endswith(".pkl")):
            continue
        key = (info.path, info.size, info.mtime_ns or 0)
        if key not in memo:
            with filesystem.open_input_stream(info.path) as stream:
                content = stream.readall()
            memo[key] = hashlib.sha256(content).hexdigest()
            if read is not None:
                read[memo[key]] = content
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


def keep_copies(tune_dir: str, accepted: Accepted, read: dict[str, bytes]) -> None:
    """After a record: copy the versions just read among the last COPIES recorded of each file into
    copies_dir, each named by its sha256, and drop the copies of older versions."""
    import pyarrow.fs as pafs

    filesystem, root = filesystem_of(copies_dir(tune_dir))
    filesystem.create_dir(root, recursive=True)
    wanted = {sha for versions in accepted.values() for sha in versions[-COPIES:]}
    for sha in wanted & read.keys():
        with filesystem.open_output_stream(f"{root}/{sha}") as out:
            out.write(read[sha])
    for info in filesystem.get_file_info(pafs.FileSelector(root)):
        if info.base_name not in wanted:
            filesystem.delete_file(info.path)


def recorded_copy(tune_dir: str, sha: str) -> bytes | None:
    """The copy of version `sha`, if it is there and still holds that version."""
    filesystem, root = filesystem_of(copies_dir(tune_dir))
    try:
        with filesystem.open_input_stream(f"{root}/{sha}") as stream:
            content = stream.readall()
    except OSError:  # no such copy
        return None
    return content if hashlib.sha256(content).hexdigest() == sha else None


def check_state(record: SweepRun, sweep_dir: Path, tune_dir: str) -> list[str]:
    """Before a restore: every state file is one the sweep recorded. A file that is not (a driver killed
    between Tune's save and its record, or a change from outside) is moved to aside_dir and replaced by
    the newest recorded copy; a file with no copy to fall back to is a ConfigError (nothing was
    unpickled). A file the sweep never recorded under that name is only moved aside. One line per file."""
    hashes = state_hashes(tune_dir, {})
    if TUNER_STATE not in hashes:
        return []  # nothing for Tune to restore: the resume says so itself
    accepted = load_accepted(record)
    unrecorded = sorted((relative for relative, sha in hashes.items() if sha not in accepted.get(relative, [])),
                        key=lambda relative: relative != TUNER_STATE)
    fallbacks = {relative: fallback_of(accepted, relative, tune_dir) for relative in unrecorded}
    for relative, content in fallbacks.items():
        if content is None and (relative in accepted or relative == TUNER_STATE):
            raise ConfigError(f"refusing to resume {sweep_dir}: tune/{relative} is not a file this sweep wrote "
                              f"(its sha256 is not among those recorded in MLflow parent run "
                              f"{record.parent_run_id[:8]}) and no recorded copy of it is left; restoring it would "
                              f"unpickle it. Start the sweep again without --resume")
    return [set_aside(relative, content, tune_dir) for relative, content in fallbacks.items()]


def fallback_of(accepted: Accepted, relative: str, tune_dir: str) -> bytes | None:
    """The newest recorded version of `relative` that has an intact copy."""
    for sha in reversed(accepted.get(relative, [])):
        content = recorded_copy(tune_dir, sha)
        if content is not None:
            return content
    return None


def set_aside(relative: str, content: bytes | None, tune_dir: str) -> str:
    filesystem, tune_root = filesystem_of(tune_dir)
    _, aside_root = filesystem_of(aside_dir(tune_dir))
    filesystem.create_dir(f"{aside_root}/{relative}".rsplit("/", 1)[0], recursive=True)
    filesystem.move(f"{tune_root}/{relative}", f"{aside_root}/{relative}")
    line = f"tune/{relative} is not a version this sweep recorded: moved to {aside_dir(tune_dir)}/{relative}"
    if content is None:
        return line
    with filesystem.open_output_stream(f"{tune_root}/{relative}") as out:
        out.write(content)
    return f"{line}; resuming from the last version it recorded"
