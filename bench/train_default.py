"""Benchmark `launch train` (the default job) on this machine.

1. Wall time of the default `launch train` as a user runs it (a fresh process, start-up
   included) and its test accuracy. Goal: <= 7 s wall (issue 26), >= 95% test accuracy.
2. Where that wall time goes: the same command once more in a fresh process whose run's
   phases are timed (exclusive seconds: a phase inside another counts only for itself):
   interpreter and imports (process start to `run`), store creation, data, the rest of the
   build, epochs (train + validate), observers (visuals and diagnosis hooks), tracking and
   checkpoints, test, model logging, closing (the run's end to the process's exit).
   The process's CPU seconds are given too: on a shared machine they move less than wall.
3. trainlib's training throughput vs a plain hand-written PyTorch loop over the same data,
   the same transforms and the same batch size, in this process (target ratio >= 0.95).

Usage: python bench/train_default.py [--epochs 6] [--no-throughput]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


GOAL_S = 7.0

# (section, module, attribute) timed in the child; the innermost running section gets the time
SECTIONS = [
    ("run", "trainlib.run", "run"),
    ("store creation", "trainlib.tracking.mlflow_store", "open_store"),
    ("open run (tags, folder, trackers)", "trainlib.run", "open_run"),
    ("data", "trainlib.run", "build_dataset"),
    ("build (model, loaders, observers)", "trainlib.run", "build_parts"),
    ("epochs (train + validate)", "trainlib.run", "train_and_validate"),
    ("observers (visuals, diagnosis)", "trainlib.observers", "Observers.on_fit_start"),
    ("observers (visuals, diagnosis)", "trainlib.observers", "Observers.on_epoch_end"),
    ("observers (visuals, diagnosis)", "trainlib.observers", "Observers.on_fit_end"),
    ("tracking and checkpoints", "trainlib.tracking.base", "MultiTracker.log_metrics"),
    ("tracking and checkpoints", "trainlib.tracking.base", "MultiTracker.log_params"),
    ("tracking and checkpoints", "trainlib.tracking.base", "MultiTracker.log_artifact"),
    ("tracking and checkpoints", "trainlib.tracking.base", "MultiTracker.set_tags"),
    ("tracking and checkpoints", "trainlib.run", "save_checkpoint"),
    ("test", "trainlib.run", "finish"),
    ("model logging", "trainlib.run", "log_final_model"),
    ("closing the run", "trainlib.tracking.base", "MultiTracker.close"),
]

CHILD = r"""
import atexit, importlib, json, sys, time

sections, out = json.loads(sys.argv[1]), sys.argv[2]
totals, stack, marks = {}, [], {}


def timed(name, fn):
    def wrapper(*args, **kwargs):
        now = time.time()
        if stack:  # the enclosing section pauses
            totals[stack[-1][0]] = totals.get(stack[-1][0], 0.0) + now - stack[-1][1]
        stack.append([name, now])
        marks.setdefault(name + ":start", now)
        try:
            return fn(*args, **kwargs)
        finally:
            end = marks[name + ":end"] = time.time()
            totals[name] = totals.get(name, 0.0) + end - stack.pop()[1]
            if stack:
                stack[-1][1] = end
    return wrapper


def dump():
    with open(out, "w") as fh:
        json.dump({"totals": totals, "run_start": marks["run:start"], "run_end": marks["run:end"]}, fh)


atexit.register(dump)  # `entry` ends the process once the exit handlers ran
for name, module, attr in sections:
    owner = importlib.import_module(module)
    *path, leaf = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    setattr(owner, leaf, timed(name, getattr(owner, leaf)))
sys.argv = ["launch", "train", "--no-progress"]
from launcher.cli import entry

entry()
"""


def default_run_wall(workdir: Path) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "launcher", "train", "--no-progress"], cwd=workdir,
                         capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    return {"wall_s": round(wall, 2), "test_acc": test_acc(out.stdout)}


def test_acc(stdout: str) -> float:
    acc_line = next(line for line in stdout.splitlines() if line.startswith("test loss"))
    return float(acc_line.split("test acc")[1].strip().rstrip("%")) / 100


def breakdown(workdir: Path) -> dict:
    """The default command once more, its phases timed (see the module's docstring); seconds."""
    import resource

    report = workdir / "breakdown.json"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    spawn = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(SECTIONS), str(report)], cwd=workdir,
                         capture_output=True, text=True, check=True)
    exit_ = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = json.loads(report.read_text())
    totals = found["totals"]
    table = {"interpreter and imports (to run())": found["run_start"] - spawn}
    table["run(): config, tags, lease, summary"] = totals.pop("run")
    table.update(totals)
    table["after run() to exit"] = exit_ - found["run_end"]
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"wall_s": round(exit_ - spawn, 2), "cpu_s": round(cpu, 2), "test_acc": test_acc(out.stdout),
            "phases_s": {k: round(v, 2) for k, v in table.items()}}


def trainlib_img_per_s(workdir: Path, epochs: int) -> list[float]:
    from trainlib.config import resolve
    from trainlib.observers import EpochObserver
    from trainlib.run import run

    rates: list[float] = []
    cfg = resolve([{"epochs": epochs, "output": {"dir": str(workdir / "runs")},
                    "tracking": {"uri": f"sqlite:///{workdir / 'bench.db'}"}}])
    run(cfg, progress=False, echo=lambda _: None,
        observers=[EpochObserver(lambda report: rates.append(report.metrics["time/img_per_s"]))])
    return rates[1:]  # the first epoch warms up


def plain_img_per_s(epochs: int) -> list[float]:
    """The seed's loop, by hand: same data, transforms, model, optimizer and batch size."""
    from trainlib.config import resolve
    from trainlib.data.datasets import build_dataset
    from trainlib.data.loaders import make_loader
    from trainlib.models import Net
    from trainlib.transforms import TransformContext, build_pipeline
    from trainlib.data.datasets import DIGITS_TRANSFORMS

    cfg = resolve([])
    torch.manual_seed(0)
    data = build_dataset(cfg.data)
    pipeline = build_pipeline(DIGITS_TRANSFORMS["train"], TransformContext(data.mean, data.std, data.image_size))
    loader = make_loader(data.train, pipeline, cfg.batch_size, shuffle=True)
    net = Net(10)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    crit = nn.CrossEntropyLoss()
    rates = []
    for _ in range(epochs):
        start, seen = time.perf_counter(), 0
        net.train()
        for x, y in loader:
            opt.zero_grad()
            loss = crit(net(x), y)
            loss.backward()
            opt.step()
            seen += len(y)
        rates.append(seen / (time.perf_counter() - start))
    return rates[1:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=6, help="epochs for the throughput comparison")
    ap.add_argument("--no-throughput", action="store_true", help="only the default command's wall time and phases")
    ap.add_argument("--phases-only", action="store_true",
                    help="run the command once, timed by phases (its wall time is the command's, plus ~1 ms of timers)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as tmp2:
        work = Path(tmp)
        phases = breakdown(Path(tmp2))
        wall = phases if args.phases_only else default_run_wall(work)
        result = {"machine": f"{torch.get_num_threads()} torch threads, CPU", "goal_wall_s": GOAL_S,
                  "default_run": {"wall_s": wall["wall_s"], "test_acc": wall["test_acc"],
                                  "meets_goal": wall["wall_s"] <= GOAL_S}, "breakdown": phases}
        if not (args.no_throughput or args.phases_only):
            # interleave the two loops so machine noise hits both alike
            plain, ours = [], []
            for _ in range(2):
                plain += plain_img_per_s(args.epochs)
                ours += trainlib_img_per_s(work, args.epochs)
            result.update({"plain_img_per_s": round(statistics.median(plain)),
                           "trainlib_img_per_s": round(statistics.median(ours)),
                           "ratio": round(statistics.median(ours) / statistics.median(plain), 3)})
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
