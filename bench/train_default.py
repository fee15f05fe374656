"""Benchmark `launch train` (the default job) on this machine.

1. Wall time of the default `launch train` as a user runs it (a fresh process, start-up
   included) and its test accuracy. Targets: >= 95% test accuracy, <= 60 s.
2. trainlib's training throughput vs a plain hand-written PyTorch loop over the same data,
   the same transforms and the same batch size, in this process (target ratio >= 0.95).

Usage: python bench/train_default.py [--epochs-plain 5]
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


def default_run_wall(workdir: Path) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "launcher", "train", "--no-progress"], cwd=workdir,
                         capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    acc_line = next(line for line in out.stdout.splitlines() if line.startswith("test loss"))
    return {"wall_s": round(wall, 1), "test_acc": float(acc_line.split("test acc")[1].strip().rstrip("%")) / 100}


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
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wall = default_run_wall(work)
        # interleave the two loops so machine noise hits both alike
        plain, ours = [], []
        for _ in range(2):
            plain += plain_img_per_s(args.epochs)
            ours += trainlib_img_per_s(work, args.epochs)
    result = {
        "machine": f"{torch.get_num_threads()} torch threads, CPU",
        "default_run": wall,
        "plain_img_per_s": round(statistics.median(plain)),
        "trainlib_img_per_s": round(statistics.median(ours)),
        "ratio": round(statistics.median(ours) / statistics.median(plain), 3),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
