"""What trainlib adds to each training step: its epoch against a plain loop doing the same work.

The seed's Net on the bundled digits (1,437 train images, 32x32), in memory, one thread, at the
tutorial's batch 16 and at 128. Both loops do the same work per step: a random permutation of
the in-memory uint8 images, the batch normalised on the fly, forward, cross-entropy, backward,
SGD (lr 0.05, momentum 0.9, weight decay 5e-4), and the accuracy counted on the device.
  plain     a hand-written loop on the model object trainlib's `build_parts` built;
  trainlib  `trainlib.run.run` with its defaults on (MLflow + TensorBoardX tracking, visuals,
            diagnosis); its step time is its `train_one_epoch` call over the epoch's steps;
  bare      the same with tracking, visuals and diagnosis off: the loop alone, without the
            observers' per-batch hooks (`bare_*`, to tell the loop's share from theirs).
Each runs `--epochs` epochs (the first is warm-up, left out); the two are interleaved `--repeats`
times and each keeps its median. Prints microseconds per step and the difference, as JSON: wall
time (the goal's measure) and the main thread's CPU time, which moves far less than wall time
when other processes share the cores (wall figures there swing by +-10%, i.e. +-300 us a step).

    PYTHONPATH=$PWD python bench/step_overhead.py            # goal: overhead <= 60 us per step
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import trainlib.run
from trainlib.config import validate
from trainlib.run import build_parts, run

GOAL_US = 60.0
NORMALIZE_ONLY = {"train": [{"normalize": {}}], "eval": [{"normalize": {}}]}


def config(batch: int, epochs: int, out: Path) -> dict[str, Any]:
    return {"batch_size": batch, "epochs": epochs, "threads": 1, "device": "cpu", "loader": {"mode": "memory"},
            "transforms": NORMALIZE_ONLY, "output": {"dir": str(out / "runs")},
            "tracking": {"uri": f"sqlite:///{out / 'mlflow.db'}", "experiment": "step_overhead", "log_model": False}}


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.thread_time()


def per_step(epochs: list[tuple[float, float]], n: int, batch: int) -> tuple[float, float]:
    """Median (wall, CPU) microseconds per step over the epochs after the first."""
    return tuple(1e6 * statistics.median(e[i] for e in epochs[1:]) / steps(n, batch) for i in (0, 1))


def plain_us_per_step(cfg: dict[str, Any]) -> tuple[tuple[float, float], int]:
    """The plain loop's median epoch (after the first), in (wall, CPU) microseconds per step; the train images."""
    parts = build_parts(validate({**cfg, "visuals": {"enabled": False}, "diagnose": {"enabled": False}}))
    model, train = parts.model, parts.data.train
    images, labels = train.images, torch.as_tensor(train.labels)
    mean = torch.tensor(parts.data.mean).view(1, -1, 1, 1)
    std = torch.tensor(parts.data.std).view(1, -1, 1, 1)
    scale, shift = 1 / (255 * std), -mean / std
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    batch, n = cfg["batch_size"], len(labels)
    model.train()
    times = []
    for _ in range(cfg["epochs"]):
        start = clocks()
        total_loss, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        perm = torch.randperm(n)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            x, y = torch.addcmul(shift, images[idx].float(), scale), labels[idx]
            logits = model(x)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
        float(total_loss), float(correct)
        times.append(tuple(b - a for a, b in zip(start, clocks())))
    return per_step(times, n, batch), n


def trainlib_us_per_step(cfg: dict[str, Any], n: int) -> tuple[float, float]:
    """trainlib's median epoch (after the first) of `n` train images, in (wall, CPU) microseconds per step."""
    times: list[tuple[float, float]] = []
    epoch = trainlib.run.train_one_epoch

    def timed(*args, **kwargs):
        start = clocks()
        try:
            return epoch(*args, **kwargs)
        finally:
            times.append(tuple(b - a for a, b in zip(start, clocks())))

    trainlib.run.train_one_epoch = timed
    try:
        run(cfg, progress=False, echo=lambda line: None)
    finally:
        trainlib.run.train_one_epoch = epoch
    return per_step(times, n, cfg["batch_size"])


def steps(n: int, batch: int) -> int:
    return -(-n // batch)


def bare(cfg: dict[str, Any]) -> dict[str, Any]:
    return {**cfg, "visuals": {"enabled": False}, "diagnose": {"enabled": False},
            "tracking": {**cfg["tracking"], "mlflow": False, "tensorboard": False}}


def measure(batch: int, args: argparse.Namespace) -> dict[str, Any]:
    plain, trainlib, loop = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            us, n = plain_us_per_step(config(batch, args.epochs, Path(tmp)))
            plain.append(us)
            trainlib.append(trainlib_us_per_step(config(batch, args.epochs, Path(tmp)), n))
            loop.append(trainlib_us_per_step(bare(config(batch, args.epochs, Path(tmp))), n))
    (p, pc), (t, tc), (b, bc) = [[statistics.median(v[i] for v in runs) for i in (0, 1)]
                                 for runs in (plain, trainlib, loop)]
    return {"batch": batch, "plain_us_per_step": round(p, 1), "trainlib_us_per_step": round(t, 1),
            "overhead_us_per_step": round(t - p, 1), "goal_us": GOAL_US, "meets_goal": t - p <= GOAL_US,
            "cpu_plain_us_per_step": round(pc, 1), "cpu_trainlib_us_per_step": round(tc, 1),
            "cpu_overhead_us_per_step": round(tc - pc, 1),
            "bare_overhead_us_per_step": round(b - p, 1), "bare_cpu_overhead_us_per_step": round(bc - pc, 1),
            "repeats_plain": [round(v[0], 1) for v in plain], "repeats_trainlib": [round(v[0], 1) for v in trainlib],
            "repeats_bare": [round(v[0], 1) for v in loop]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", nargs="+", type=int, default=[16, 128])
    ap.add_argument("--epochs", type=int, default=4, help="per measurement; the first is warm-up")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved repeats of plain, trainlib and bare")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [measure(batch, args) for batch in args.batches]
    result = {"meta": {"torch": torch.__version__, "threads": torch.get_num_threads()}, "rows": rows,
              "all_meet_goal": all(r["meets_goal"] for r in rows)}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
