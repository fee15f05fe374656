"""What a Ray Tune sweep costs beyond training: `launch sweep` vs the same runs in one process.

16 one-epoch runs of the seed's Net on the digits (seeds 0-15), tracked in MLflow:
1. sequentially, `trainlib.run` called 16 times in this process (imports already done);
2. as a sweep through launcher.sweep (a fresh local Ray, one trial at a time so the two are
   comparable on any machine), timing Ray's start-up separately.
Per-trial overhead = sweep wall time without Ray start-up / trials - in-process wall time per run;
it is split into the time while a trial's MLflow run is open (reporting to Tune, checkpoint
copies; run durations compared) and around it (Tune scheduling, the trial process). Around it is
split again, from the runs' start and end times: before the first trial's run opens (Tune's set-up,
the trial process's start and imports), between one run's end and the next one's start (Tune's
per-trial work), and after the last run ends (the summary, the report). The training seconds per
epoch of both show how much the machine's load moved between them.
Goal (issue 26): <= 0.25 s per trial beyond training, 16 one-epoch trials; Ray's start-up apart.
The whole comparison is repeated (--rounds, each in a fresh process and Ray) and judged on the median round.

Usage: python bench/sweep_overhead.py [--trials 16] [--batch-size 128] [--rounds 3]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 0.25  # overhead per trial, beyond training


def base_layer(workdir: Path, batch_size: int) -> dict:
    return {"epochs": 1, "batch_size": batch_size, "scheduler": "constant", "output": {"dir": str(workdir / "runs")},
            "tracking": {"uri": f"sqlite:///{workdir / 'mlflow.db'}", "experiment": "bench"}}


def sequential(workdir: Path, seeds: range, batch_size: int) -> list[float]:
    from trainlib.config import resolve
    from trainlib.run import run

    walls = []
    for seed in seeds:
        # one thread, as in a trial with resources.cpu 1; run() sets torch's threads from the config
        cfg = resolve([base_layer(workdir, batch_size),
                       {"seed": seed, "threads": 1, "tracking": {"experiment": "bench-seq"}}])
        start = time.perf_counter()
        run(cfg, progress=False, echo=lambda _: None)
        walls.append(time.perf_counter() - start)
    return walls


def sweep(workdir: Path, trials: int, batch_size: int) -> dict:
    import os

    import ray

    from launcher.cluster.local_ray import start_local_ray
    from launcher.sweep.cmd import run_sweep
    from launcher.sweep.loading import load_sweep

    path = workdir / "bench.yaml"
    path.write_text(f"name: bench\nspace:\n  seed: {{grid: {list(range(trials))}}}\n"
                    f"tune: {{search: grid, num_samples: 1, max_concurrent_trials: 1}}\nresources: {{cpu: 1}}\n")
    start = time.perf_counter()
    start_local_ray(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - start
    swept = load_sweep(path, [base_layer(workdir, batch_size)])
    start, started = time.perf_counter(), time.time()
    with contextlib.redirect_stdout(io.StringIO()):
        run_sweep(swept, resume=False, retry_errored=False, address=None, verbose=False)
    total = time.perf_counter() - start
    ray.shutdown()
    return {"ray_startup_s": startup, "sweep_s": total, "started": started, "ended": started + total}


def trial_runs(workdir: Path, experiment: str) -> list:
    """The experiment's runs but a sweep's parent run."""
    from launcher.sweep.tracking import client_for

    client = client_for(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return [r for r in runs if r.data.tags.get("launch.kind") != "sweep"]


def tracked(workdir: Path, experiment: str) -> tuple[list[float], list[float]]:
    """Each run's open time (MLflow start to end) and training seconds per epoch (trials only)."""
    runs = trial_runs(workdir, experiment)
    return ([(r.info.end_time - r.info.start_time) / 1000 for r in runs],
            [r.data.metrics["time/epoch_s"] for r in runs])


def spans(workdir: Path, experiment: str, swept: dict) -> dict:
    """Before the first trial's run opens, between runs (mean), after the last run ends: seconds."""
    runs = sorted((r.info.start_time / 1000, r.info.end_time / 1000) for r in trial_runs(workdir, experiment))
    gaps = [nxt[0] - end for (_, end), nxt in zip(runs, runs[1:])]
    return {"before_the_first_run_s": round(runs[0][0] - swept["started"], 2),
            "between_runs_s": round(statistics.mean(gaps), 3) if gaps else None,
            "after_the_last_run_s": round(swept["ended"] - runs[-1][1], 2)}


def one_round(trials: int, batch_size: int) -> dict:
    """In-process runs and a sweep of the same runs, in a fresh folder: the overhead and its split."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        half = trials // 2  # half the in-process runs before the sweep, half after: load drift hits both
        seq = sequential(work, range(half), batch_size)
        swp = sweep(work, trials, batch_size)
        seq += sequential(work, range(half, trials), batch_size)
        (seq_open, seq_train), (sweep_open, sweep_train) = tracked(work, "bench-seq"), tracked(work, "bench")
        around_split = spans(work, "bench", swp)
    mean = statistics.mean
    per_trial = swp["sweep_s"] / trials
    around = (per_trial - mean(sweep_open)) - (mean(seq) - mean(seq_open))
    return {
        "ray_startup_s": round(swp["ray_startup_s"], 1),
        "in_process_per_run_s": round(mean(seq), 2),
        "sweep_per_trial_s": round(per_trial, 2),
        "overhead_per_trial_s": round(per_trial - mean(seq), 2),
        "of_which_around_the_run_s": round(around, 2),
        "of_which_while_the_run_is_open_s": round(mean(sweep_open) - mean(seq_open), 2),
        "around_the_runs_per_sweep": around_split,
        "train_s_per_epoch_in_process_vs_sweep": [round(statistics.median(seq_train), 2),
                                                  round(statistics.median(sweep_train), 2)],
    }


def fresh_round(trials: int, batch_size: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--rounds", "1", "--trials", str(trials),
                          "--batch-size", str(batch_size)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout[out.stdout.index("{"):])["rounds"][0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3, help="rounds (each a fresh Ray); the verdict is their median: "
                                                          "one round on a 2-core machine moves by +-0.1 s a trial")
    args = ap.parse_args()
    if args.rounds == 1:
        rounds = [one_round(args.trials, args.batch_size)]
    else:  # each round in a fresh process: a warm one would spare the in-process runs their first imports
        rounds = [fresh_round(args.trials, args.batch_size) for _ in range(args.rounds)]
    overhead = statistics.median(r["overhead_per_trial_s"] for r in rounds)
    print(json.dumps({"trials": args.trials, "rounds": rounds, "median_overhead_per_trial_s": round(overhead, 2),
                      "goal_per_trial_s": GOAL_S, "meets_goal": overhead <= GOAL_S}, indent=1))


if __name__ == "__main__":
    main()
