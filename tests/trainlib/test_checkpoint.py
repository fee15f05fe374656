"""Checkpoint writes: a write killed with SIGKILL leaves a temp file, which the next write removes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from trainlib.checkpoint import LAST, load_safely, save_atomic

WRITE_FOREVER = """
import sys, torch
from pathlib import Path
from trainlib.checkpoint import save_atomic
big = {"model": {"w": torch.zeros(64, 2**20)}}  # 256 MiB: long enough to be killed mid-write
while True:
    save_atomic(big, Path(sys.argv[1]))
"""


def killed_mid_write(path: Path) -> list[Path]:
    """Start a process writing `path` again and again, kill -9 it while a temp file exists; the temp files left."""
    writer = subprocess.Popen([sys.executable, "-c", WRITE_FOREVER, str(path)])
    try:
        deadline = time.monotonic() + 60
        while not list(path.parent.glob(f".{path.name}.*.tmp")):
            assert writer.poll() is None and time.monotonic() < deadline, "the writer never started a write"
            time.sleep(0.01)
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    return list(path.parent.glob(f".{path.name}.*.tmp"))


def test_a_killed_write_leaves_a_temp_file_that_the_next_write_removes(tmp_path):
    path = tmp_path / "checkpoints" / LAST
    left = killed_mid_write(path)
    assert left, "kill -9 mid-write should leave the temp file"
    (tmp_path / "checkpoints" / ".best.pt.keep.tmp").write_bytes(b"")  # another checkpoint's: not ours to remove
    save_atomic({"epoch": 2}, path)
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == [".best.pt.keep.tmp"]
    assert load_safely(path) == {"epoch": 2}
