"""The local Ray a `launch` process starts dies with it, however it dies.

Ray ends most of its processes when their driver dies, but not all: after a kill -9 of a
`launch sweep`, its dashboard and runtime-env agents lived on. `watch(os.getpid())` starts
`python -m launcher.cluster.ray_reaper PARENT_PID`, which notes the parent's descendants every second
and, once the parent is gone, ends those still alive: SIGTERM, then SIGKILL after a grace
period. A process is known by its pid and start time, so a pid reused meanwhile is never
touched. The reaper detaches from the parent (a second fork): Ray's raylet kills the child
processes of a driver that died, and would take the reaper with them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 1.0
GRACE_S = 2.0  # Ray's idle workers and agents, their raylet gone, outlived a SIGTERM: the SIGKILL follows soon

Process = tuple[int, str]  # pid, start time (field 22 of /proc/PID/stat)


def watch(parent: int) -> None:
    """Start the reaper of `parent`'s descendants (Linux: /proc); it ends when its work is done."""
    subprocess.run([sys.executable, "-m", "launcher.cluster.ray_reaper", str(parent), table()[parent][1]],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   start_new_session=True, check=True)  # returns once the reaper has detached


def table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every live process."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            found[int(stat.parent.name)] = (int(fields[1]), fields[19])
    return found


def descendants(root: int) -> set[Process]:
    procs = table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in procs.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid != os.getpid():
            found.add((pid, procs[pid][1]))
        todo.extend(children.get(pid, []))
    return found


def alive(known: set[Process]) -> set[Process]:
    procs = table()
    return {(pid, start) for pid, start in known if pid in procs and procs[pid][1] == start}


def end(known: set[Process]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, _ in alive(known):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + GRACE_S
        while alive(known) and time.monotonic() < deadline:
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    parent = (int(argv[0]), argv[1])
    if os.fork():
        return 0  # the reaper goes on in the child, no longer a child of `parent`
    known: set[Process] = set()
    while alive({parent}):
        known = alive(known) | descendants(parent[0])
        time.sleep(POLL_S)
    end(known)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
