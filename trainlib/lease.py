"""One process at a time writes a run: a lease on its run folder.

The lease is an exclusive, non-blocking `flock` on `<run folder>/.lease`. The kernel drops it
when its holder exits however it exits (kill -9 included), so a crashed holder's lease is taken
over by the next process that asks; the file names the holder, for the refusal's line. A process
asking again for a lease it holds gets it (a count): `launch train --resume` takes it before the
run is built, `trainlib.run` again when it opens the run.
"""
from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from trainlib.errors import UserError

LEASE_FILE = ".lease"

_held: dict[Path, list[int]] = {}  # run folder -> [file descriptor, times taken]


class RunBusy(UserError):
    """Another live process writes this run."""


def acquire(run_dir: Path, run_id: str) -> None:
    """Take the run's lease (kept until `release` or this process ends); RunBusy if another process holds it."""
    key = Path(run_dir).resolve()
    if key in _held:
        _held[key][1] += 1
        return
    key.mkdir(parents=True, exist_ok=True)
    fd = os.open(key / LEASE_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise RunBusy(f"run {run_id} is being resumed or trained by another process ({holder}); "
                      f"wait for it to end or stop it, then resume") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    _held[key] = [fd, 1]


def release(run_dir: Path) -> None:
    key = Path(run_dir).resolve()
    entry = _held.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] == 0:
        del _held[key]
        os.close(entry[0])  # closing the descriptor drops the lock


@contextmanager
def holding(run_dir: Path, run_id: str) -> Iterator[None]:
    acquire(run_dir, run_id)
    try:
        yield
    finally:
        release(run_dir)
