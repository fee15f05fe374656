"""A server's process group lives only as long as the `launch` process that started it.

`python -m launcher.server_guard PARENT_PID -- COMMAND...` runs COMMAND as its child in its own
process group (launcher.servers starts it in a new session) and ends that whole group (the
server and everything it forked: `mlflow server`'s uvicorn, ...) when PARENT_PID dies, however
it dies (kill -9 included): Linux's parent-death signal (prctl PR_SET_PDEATHSIG) says so at
once, a check of the parent every half second elsewhere. Its exit code is the server's.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from typing import Any, NoReturn

PR_SET_PDEATHSIG = 1
POLL_S = 0.5
GRACE_S = 5.0


def ask_for_parent_death_signal() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def end_group(child: subprocess.Popen) -> NoReturn:
    """SIGTERM to the group, SIGKILL to what is left of it after a grace period (this process included)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)
    try:
        child.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    os.killpg(0, signal.SIGKILL)
    sys.exit(1)  # not reached: SIGKILL took this process too


def exit_code(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 - returncode


def main(argv: list[str]) -> int:
    parent, separator, *command = argv
    if separator != "--" or not command:
        raise SystemExit("usage: python -m launcher.server_guard PARENT_PID -- COMMAND...")
    ask_for_parent_death_signal()
    child = subprocess.Popen(command)

    def on_term(signum: int, frame: Any) -> None:  # the parent died (or stop_all reached this group)
        end_group(child)

    signal.signal(signal.SIGTERM, on_term)
    while True:
        if os.getppid() != int(parent):  # it died before prctl, or this is no Linux
            end_group(child)
        try:
            return exit_code(child.wait(timeout=POLL_S))
        except subprocess.TimeoutExpired:
            continue


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
