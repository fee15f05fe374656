"""`launch` as a process: `launcher.cli.entry` exits without the interpreter's teardown, after
everything a process does at exit (threads joined, exit handlers run, output flushed)."""
from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from launcher.cli import exit_status, main

EXITING = """
import atexit, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from launcher.cli import entry

out = Path(sys.argv[1])
atexit.register(lambda: (out / "exit_handler").write_text("ran"))
threading.Thread(target=lambda: (time.sleep(0.3), (out / "thread").write_text("done"))).start()
pool = ThreadPoolExecutor(1)  # its worker stops only when told to at exit (threading's own exit hook)
pool.submit(lambda: (out / "pool").write_text("done"))
sys.argv = ["launch", *sys.argv[2:]]
entry()
"""


def launch(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "launcher", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_the_output_is_whole_and_the_status_kept(tmp_path):
    shown = launch("catalog")
    assert shown.returncode == 0
    assert shown.stdout == CliRunner().invoke(main, ["catalog"]).output  # piped, nothing lost at the quick exit
    refused = launch("train", "-s", "epochs=zz", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: ") and "epochs" in refused.stderr
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_threads_and_exit_handlers_finish_before_the_process_ends(tmp_path):
    done = subprocess.run([sys.executable, "-c", EXITING, str(tmp_path), "--version"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "version" in done.stdout
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"exit_handler": "ran", "thread": "done",
                                                                   "pool": "done"}
    failed = subprocess.run([sys.executable, "-c", EXITING, str(tmp_path), "no-such-command"], capture_output=True,
                            text=True, timeout=60)
    assert failed.returncode == 2 and "No such command" in failed.stderr


def test_exit_status_is_what_sys_exit_gives(capsys):
    assert [exit_status(code) for code in (None, 0, 2, True)] == [0, 0, 2, 1]
    assert exit_status("refused: a reason") == 1
    assert capsys.readouterr().err == "refused: a reason\n"
