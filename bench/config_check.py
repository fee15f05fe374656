"""Benchmark checking a config: `launch train --print-config` and a refused config (`-s epochs=zz`).

Each command runs in a fresh process under /usr/bin/time -v, 5 times; the median wall time and
peak memory (max RSS) are printed against the goals (issue 26): at most 1.5 s and 200 MB.

Usage: python bench/config_check.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile

GOAL_WALL_S = 1.5
GOAL_RSS_MB = 200
COMMANDS = {"launch train --print-config": ["train", "--print-config"],
            "launch train -s epochs=zz": ["train", "-s", "epochs=zz"]}


def measure(args: list[str], workdir: str) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one fresh `python -m launcher ARGS`."""
    out = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "launcher", *args], cwd=workdir,
                         capture_output=True, text=True)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", out.stderr)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)
    hours, minutes, seconds = wall.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds), int(rss.group(1)) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    with tempfile.TemporaryDirectory() as workdir:
        for label, args in COMMANDS.items():
            runs = [measure(args, workdir) for _ in range(repeats)]
            wall = statistics.median(r[0] for r in runs)
            rss = statistics.median(r[1] for r in runs)
            verdict = "ok" if wall <= GOAL_WALL_S and rss <= GOAL_RSS_MB else "OVER GOAL"
            print(f"{label:32s} wall {wall:5.2f} s (goal {GOAL_WALL_S} s)  peak RSS {rss:5.0f} MB "
                  f"(goal {GOAL_RSS_MB} MB)  median of {repeats}: {verdict}")


if __name__ == "__main__":
    main()
