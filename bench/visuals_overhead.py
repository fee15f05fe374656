"""What the visuals and the diagnosis cost: the default run with them vs with everything off.

Runs `trainlib.run.run` in this one process, interleaving the configs (so machine noise hits
them alike), after one short warm-up run that pays the one-time imports. Reports the median
wall time and CPU time (this process, all threads) of whole runs, start-up and final test
pass included. Target: the defaults cost at most 5% over all off.

Usage: python bench/visuals_overhead.py [--epochs 15] [--repeats 2] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

CONFIGS = {
    "all off": {"visuals": {"enabled": False}, "diagnose": {"enabled": False}},
    "visuals defaults": {"diagnose": {"enabled": False}},
    "defaults (visuals + diagnose)": {},
}


def timed_run(workdir: Path, epochs: int, layer: dict) -> tuple[float, float]:
    from trainlib.config import resolve
    from trainlib.run import run

    cfg = resolve([{"epochs": epochs, "device": "cpu", "output": {"dir": str(workdir / "runs")},
                    "tracking": {"uri": f"sqlite:///{workdir / 'bench.db'}", "experiment": "bench"}}, layer])
    wall, cpu = time.perf_counter(), time.process_time()
    run(cfg, progress=False, echo=lambda _: None)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=15, help="epochs per run (15: the default run)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per config")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a busy machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        timed_run(work, 1, {})  # warm-up: imports, the MLflow store's creation
        for _ in range(args.repeats):
            for name, layer in CONFIGS.items():
                times[name].append(timed_run(work, args.epochs, layer))
    base_wall = statistics.median(w for w, _ in times["all off"])
    base_cpu = statistics.median(c for _, c in times["all off"])
    result = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), "
                         f"CPU; epochs {args.epochs}, repeats {args.repeats}"}
    for name, runs in times.items():
        wall, cpu = statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)
        result[name] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                        "wall_overhead": f"{wall / base_wall - 1:+.1%}", "cpu_overhead": f"{cpu / base_cpu - 1:+.1%}",
                        "runs_wall_s": [round(w, 2) for w, _ in runs]}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
