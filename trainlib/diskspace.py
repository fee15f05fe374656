"""Writing outputs: the output folder must accept files, and a write that fails for want of
space says so, naming the disk and the file, as a user error."""
from __future__ import annotations

import errno
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from trainlib.errors import ConfigError, UserError

NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
# torch.save's zip writer reports a short write this way, without an errno
TORCH_SHORT_WRITE = ("unexpected pos", "PytorchStreamWriter failed")


def check_can_write(root: Path) -> None:
    """Without creating anything: `root` is, or can become, a folder that accepts files (checked
    before the tracking store is opened, which may create it)."""
    folder = existing_ancestor(root)
    if not folder.is_dir():
        raise ConfigError(f"output dir '{root}' is not writable: {folder} is a file")
    if not accepts_writes(folder):
        raise ConfigError(f"output dir '{root}' is not writable: {folder} is read-only")


def existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def accepts_writes(path: Path) -> bool:
    """os.access, plus statvfs for read-only mounts (os.access says yes to root on those)."""
    if not os.access(path, os.W_OK):
        return False
    return not os.statvfs(path).f_flag & os.ST_RDONLY


def check_writable(root: Path) -> None:
    """Create the output folder `root` and prove a file can be made in it."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-test-{time.time_ns()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"output dir '{root}' is not writable: {exc.strerror}") from None


class DiskFull(UserError):
    """No space left where a checkpoint, artifact or output file is written."""


@contextmanager
def space_checked(path: str | Path) -> Iterator[None]:
    """Turn a failed write under `path` caused by a full disk (or quota) into DiskFull."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in NO_SPACE:
            raise
        raise disk_full(Path(exc.filename or path)) from None
    except RuntimeError as exc:
        if not any(marker in str(exc) for marker in TORCH_SHORT_WRITE):
            raise
        raise disk_full(Path(path)) from None


def disk_full(path: Path) -> DiskFull:
    mount = _mount_point(path)
    try:
        free = f"{shutil.disk_usage(mount).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    return DiskFull(f"disk full: no space left on {mount} ({free}) writing {path}; "
                    f"free some space or write elsewhere (--output-dir / output.dir)")


def _mount_point(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path
