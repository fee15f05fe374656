"""Benchmark the doctor's costs on this machine.

1. Step-0 checks (on by default): the default `launch train` config run in this process with
   `diagnose.step0` on and off, alternating, several repeats; the median wall time of each and
   their ratio. The step-0 work itself (hooks, checks, the diagnostics.json write) is also
   timed directly, as a share of the median run.
2. The probes (`launch diagnose --probe`): seconds each, on the default config.

Usage: python bench/diagnose_costs.py [--epochs 15] [--repeats 3] [--no-probes]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch


def timed_step0():
    """Wrap Step0's two entry points to add up the seconds spent in them."""
    from trainlib.live_checks import step0

    spent = [0.0]

    def wrap(fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start
        return timed

    step0.Step0.__init__ = wrap(step0.Step0.__init__)
    step0.Step0.check = wrap(step0.Step0.check)
    return spent


def one_run(workdir: Path, epochs: int, step0_on: bool, index: int) -> float:
    from trainlib.config import resolve
    from trainlib.run import run

    cfg = resolve([{"epochs": epochs, "output": {"dir": str(workdir / "runs")}, "diagnose": {"step0": step0_on},
                    "threads": 1,  # the one thread main() reports: run() sets torch's threads from the config
                    "tracking": {"uri": f"sqlite:///{workdir / 'bench.db'}", "run_name": f"bench-{index}"}}])
    start = time.perf_counter()
    run(cfg, progress=False, echo=lambda _: None)
    return time.perf_counter() - start


def step0_overhead(epochs: int, repeats: int) -> dict:
    spent = timed_step0()
    walls: dict[bool, list[float]] = {True: [], False: []}
    step0_seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        one_run(Path(tmp), 1, True, -1)  # warm-up: imports, the store's migration, dataset caches
        for i in range(repeats):
            for on in ((True, False) if i % 2 == 0 else (False, True)):
                before = spent[0]
                walls[on].append(one_run(Path(tmp), epochs, on, i))
                if on:
                    step0_seconds.append(spent[0] - before)
    on, off = statistics.median(walls[True]), statistics.median(walls[False])
    inside = statistics.median(step0_seconds)
    return {"epochs": epochs, "repeats": repeats, "wall_on_s": [round(w, 2) for w in walls[True]],
            "wall_off_s": [round(w, 2) for w in walls[False]], "median_on_s": round(on, 2),
            "median_off_s": round(off, 2), "overhead_ratio": round(on / off - 1, 4),
            "step0_own_s": round(inside, 4), "step0_own_share": round(inside / off, 5)}


def probe_costs() -> dict:
    from trainlib.config import resolve
    from trainlib.diagnose.probes import run_probes

    run_probes(resolve([{}]), names=("lr_probe",))  # warm-up: imports, the dataset
    results = run_probes(resolve([{}]))
    return {p.name: {"seconds": p.seconds, "outcome": p.outcome} for p in results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=15, help="epochs per run (15: the default `launch train`)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-probes", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = {"machine": f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}",
           "step0": step0_overhead(args.epochs, args.repeats)}
    if not args.no_probes:
        out["probes"] = probe_costs()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
