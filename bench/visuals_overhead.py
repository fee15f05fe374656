"""What the visuals and the diagnosis cost: the default run with them vs with everything off.

Runs `trainlib.run.run` in this one process, alternating the two configs (so machine noise
hits both alike), after a short warm-up run that pays the one-time imports. Reports, per
config, the min and median wall time and CPU time (this process, all threads) of whole runs
(start-up and final test pass included), and, for the defaults, the time spent inside
each observer's hooks (wall and CPU, median over the runs): a direct measure that a busy machine blurs much less than the
difference of two whole runs. Target: the defaults cost at most 5% over all off.

Usage: python bench/visuals_overhead.py [--epochs 15] [--repeats 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

CONFIGS = {"all off": {"visuals": {"enabled": False}, "diagnose": {"enabled": False}}, "defaults": {}}
HOOK_PARTS = {"visuals": lambda name: name != "DiagnoseObserver", "diagnosis": lambda name: name == "DiagnoseObserver",
              "both": lambda name: True}
HOOKS = ("on_fit_start", "after_backward", "epoch_metrics", "on_epoch_end", "on_fit_end")


def time_hooks(spent: dict[str, list[float]]) -> None:
    """Wrap every observer `run()` builds so each hook's [wall, CPU] time adds up in `spent`; the
    diagnosis's dead-unit forward hooks (run inside the training step) count as its own."""
    import trainlib.live_checks.activations
    import trainlib.run

    dead_units = trainlib.live_checks.activations.DeadUnits
    make_record = dead_units._hook
    dead_units._hook = lambda self, name: _timed(make_record(self, name), "DiagnoseObserver", spent)

    build = trainlib.run.build_observers

    def timed_build(*args):
        observers = build(*args)
        for observer in observers.observers:
            for hook in HOOKS:
                setattr(observer, hook, _timed(getattr(observer, hook), type(observer).__name__, spent))
        return observers

    trainlib.run.build_observers = timed_build


def _timed(fn, name: str, spent: dict[str, list[float]]):
    def call(*args):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return fn(*args)
        finally:
            spent[name][0] += time.perf_counter() - wall
            spent[name][1] += time.process_time() - cpu
    return call


def timed_run(workdir: Path, epochs: int, layer: dict) -> tuple[float, float]:
    from trainlib.config import resolve
    from trainlib.run import run

    cfg = resolve([{"epochs": epochs, "device": "cpu", "output": {"dir": str(workdir / "runs")},
                    "tracking": {"uri": f"sqlite:///{workdir / 'bench.db'}", "experiment": "bench"}}, layer])
    wall, cpu = time.perf_counter(), time.process_time()
    run(cfg, progress=False, echo=lambda _: None)
    return time.perf_counter() - wall, time.process_time() - cpu


def summary(runs: list[tuple[float, float]], base: list[tuple[float, float]]) -> dict:
    """Per kind (wall, cpu): the times, and the overhead from the minima, the medians and the
    median of the back-to-back pairs (each run against the all-off run just before it)."""
    out = {}
    for i, kind in enumerate(("wall", "cpu")):
        values, base_values = [r[i] for r in runs], [r[i] for r in base]
        out[f"{kind}_s"] = [round(v, 2) for v in values]
        out[f"{kind}_overhead_min"] = f"{min(values) / min(base_values) - 1:+.1%}"
        out[f"{kind}_overhead_median"] = f"{statistics.median(values) / statistics.median(base_values) - 1:+.1%}"
        pairs = [v / b - 1 for v, b in zip(values, base_values)]
        out[f"{kind}_overhead_paired_median"] = f"{statistics.median(pairs):+.1%}"
    return out


def per_hook_medians(per_run: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Each observer's median [wall, cpu] over the runs: a garbage-collector pause that lands
    in one hook of one run does not move it."""
    names = sorted({name for spent in per_run for name in spent}, key=lambda n: -per_run[0].get(n, [0.0])[0])
    return {name: [round(statistics.median(spent.get(name, [0.0, 0.0])[i] for spent in per_run), 3) for i in (0, 1)]
            for name in names}


def hook_shares(per_run: list[dict[str, list[float]]], base: list[tuple[float, float]]) -> dict[str, list[str]]:
    """Median over the runs of the time inside a part's hooks, over the median all-off run, as [wall, cpu]."""
    medians = [statistics.median(r[i] for r in base) for i in (0, 1)]

    def share(pick, i: int) -> str:
        inside = statistics.median(sum(t[i] for name, t in spent.items() if pick(name)) for spent in per_run)
        return f"{inside / medians[i]:.1%}"

    return {part: [share(pick, i) for i in (0, 1)] for part, pick in HOOK_PARTS.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=15, help="epochs per run (15: the default run)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per config")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a busy machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    time_hooks(spent)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in CONFIGS}
    per_run: list[dict[str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        timed_run(work, 1, {})  # warm-up: imports, the MLflow store's creation
        for _ in range(args.repeats):
            for name, layer in CONFIGS.items():
                spent.clear()
                times[name].append(timed_run(work, args.epochs, layer))
            per_run.append(dict(spent))
    print(json.dumps({
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch thread(s); "
                   f"{args.epochs} epochs per run, {args.repeats} runs per config",
        "all off": summary(times["all off"], times["all off"]),
        "defaults": summary(times["defaults"], times["all off"]),
        "defaults: [wall_s, cpu_s] inside observer hooks per run (median)": per_hook_medians(per_run),
        "defaults: hooks' share of an all-off run (wall, cpu)": hook_shares(per_run, times["all off"]),
    }, indent=1))


if __name__ == "__main__":
    main()
