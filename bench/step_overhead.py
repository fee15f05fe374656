"""What trainlib adds to each training step: its epoch against a plain loop doing the same work.

The seed's Net on the bundled digits (1,437 train images, 32x32), in memory, one thread, at the
tutorial's batch 16 and at 128. Both loops do the same work per step: a random permutation of
the in-memory uint8 images, the batch normalised on the fly, forward, cross-entropy, backward,
the configured torch SGD step, and the loss and accuracy summed on the device.
  plain     a hand-written loop on trainlib's model, optimizer (torch's SGD as configured), loss
            and in-memory uint8 images;
  trainlib  `trainlib.run.run` with its defaults on (MLflow + TensorBoardX tracking, visuals,
            diagnosis); its step time is its `train_one_epoch` call over the epoch's steps;
  bare      the same with tracking, visuals and diagnosis off: the loop alone, without the
            observers' per-batch hooks (to tell the loop's share from theirs).

Interleaved epoch by epoch, in one process: each of trainlib's epochs is paired with a plain
epoch run right before or right after it (the order alternates), `--pairs` pairs per variant
after one warm-up pair. A pair's two epochs are a fraction of a second apart, so a neighbour's
load on a shared machine mostly hits both; the overhead is the median of the pairs' differences.
Each figure is given as wall time (the goal's measure) and the main thread's CPU time, which
moves far less than wall time when other processes share the cores.

    PYTHONPATH=$PWD python bench/step_overhead.py       # goal: overhead <= 60 us per step
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

import trainlib.run
from trainlib.config import validate
from trainlib.run import build_parts, run

GOAL_US = 60.0
NORMALIZE_ONLY = {"train": [{"normalize": {}}], "eval": [{"normalize": {}}]}
Clock = tuple[float, float]  # (wall, main thread CPU) seconds


def config(batch: int, epochs: int, out: Path) -> dict[str, Any]:
    return {"batch_size": batch, "epochs": epochs, "threads": 1, "device": "cpu", "loader": {"mode": "memory"},
            "transforms": NORMALIZE_ONLY, "output": {"dir": str(out / "runs")},
            "tracking": {"uri": f"sqlite:///{out / 'mlflow.db'}", "experiment": "step_overhead", "log_model": False}}


def bare(cfg: dict[str, Any]) -> dict[str, Any]:
    return {**cfg, "visuals": {"enabled": False}, "diagnose": {"enabled": False},
            "tracking": {**cfg["tracking"], "mlflow": False, "tensorboard": False}}


def clocks() -> Clock:
    return time.perf_counter(), time.thread_time()


def timed(fn: Callable[[], Any]) -> tuple[Any, Clock]:
    start = clocks()
    result = fn()
    return result, tuple(b - a for a, b in zip(start, clocks()))


class PlainLoop:
    """The hand-written loop. It trains the very model, optimizer, loss and in-memory images of the
    trainlib epoch it is paired with (the arguments of that `train_one_epoch` call): the same
    tensors at the same addresses, so the pair differs only in the code that drives the step."""

    def __init__(self, cfg: dict[str, Any]):
        data = build_parts(validate(bare(cfg))).data
        mean = torch.tensor(data.mean).view(1, -1, 1, 1)
        std = torch.tensor(data.std).view(1, -1, 1, 1)
        self.scale, self.shift = 1 / (255 * std), -mean / std
        self.batch = cfg["batch_size"]
        self.samples = len(data.train)

    def epoch(self, model: torch.nn.Module, loader: Any, loss_fn: torch.nn.Module,
              opt: torch.optim.Optimizer) -> tuple[float, float]:
        images, labels, batch, n = loader.images, loader.labels, self.batch, len(loader.labels)
        model.train()
        total_loss, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        perm = torch.randperm(n)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            x, y = torch.addcmul(self.shift, images[idx].float(), self.scale), labels[idx]
            logits = model(x)
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
        return float(total_loss) / n, float(correct) / n


def paired_run(cfg: dict[str, Any], plain: PlainLoop) -> list[tuple[Clock, Clock]]:
    """trainlib's run of `cfg`, each `train_one_epoch` call paired with a plain epoch on the same
    model (before it on even pairs, after it on odd ones); per pair, (plain, trainlib) seconds."""
    pairs: list[tuple[Clock, Clock]] = []
    epoch = trainlib.run.train_one_epoch

    def paired(model, loader, loss_fn, optimizer, *args, **kwargs):
        first = len(pairs) % 2 == 0
        if first:
            _, p = timed(lambda: plain.epoch(model, loader, loss_fn, optimizer))
        result, t = timed(lambda: epoch(model, loader, loss_fn, optimizer, *args, **kwargs))
        if not first:
            _, p = timed(lambda: plain.epoch(model, loader, loss_fn, optimizer))
        pairs.append((p, t))
        return result

    trainlib.run.train_one_epoch = paired
    try:
        run(cfg, progress=False, echo=lambda line: None)
    finally:
        trainlib.run.train_one_epoch = epoch
    return pairs


def summary(pairs: list[tuple[Clock, Clock]], steps: int) -> dict[str, float]:
    """Microseconds per step over the pairs after the first (warm-up): medians of each side and of
    the pairs' differences, wall and CPU; and the floor: the fastest trainlib epoch less the
    fastest plain one (a neighbour's load only ever adds time)."""
    us = [[[1e6 * s / steps for s in side] for side in pair] for pair in pairs[1:]]
    out = {}
    for clock, i in (("wall", 0), ("cpu", 1)):
        out[f"{clock}_plain"] = round(statistics.median(p[i] for p, _ in us), 1)
        out[f"{clock}_trainlib"] = round(statistics.median(t[i] for _, t in us), 1)
        out[f"{clock}_overhead"] = round(statistics.median(t[i] - p[i] for p, t in us), 1)
        out[f"{clock}_floor"] = round(min(t[i] for _, t in us) - min(p[i] for p, _ in us), 1)
    return out


def measure(batch: int, pairs: int | None, steps_per_variant: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        plain = PlainLoop(config(batch, 1, Path(tmp)))
        steps = -(-plain.samples // batch)
        pairs = pairs or -(-steps_per_variant // steps)
        cfg = config(batch, pairs + 1, Path(tmp))  # the plain loop uses the config's batch and data alone
        defaults = summary(paired_run(cfg, plain), steps)
        loop = summary(paired_run(bare(cfg), plain), steps)
    return {"batch": batch, "steps_per_epoch": steps, "pairs": pairs,
            "plain_us_per_step": defaults["wall_plain"], "trainlib_us_per_step": defaults["wall_trainlib"],
            "overhead_us_per_step": defaults["wall_overhead"], "goal_us": GOAL_US,
            "meets_goal": defaults["wall_overhead"] <= GOAL_US,
            "cpu_plain_us_per_step": defaults["cpu_plain"], "cpu_trainlib_us_per_step": defaults["cpu_trainlib"],
            "cpu_overhead_us_per_step": defaults["cpu_overhead"], "cpu_meets_goal": defaults["cpu_overhead"] <= GOAL_US,
            "wall_floor_overhead_us_per_step": defaults["wall_floor"], "cpu_floor_overhead_us_per_step": defaults["cpu_floor"],
            "bare_overhead_us_per_step": loop["wall_overhead"], "bare_cpu_overhead_us_per_step": loop["cpu_overhead"]}


def line(row: dict[str, Any]) -> str:
    verdict = "meets" if row["meets_goal"] else "MISSES"
    return (f"batch {row['batch']:>4}: plain {row['plain_us_per_step']:,.0f} us/step, trainlib {row['trainlib_us_per_step']:,.0f}"
            f" -> overhead {row['overhead_us_per_step']:+,.0f} us wall ({row['cpu_overhead_us_per_step']:+,.0f} CPU, "
            f"floor {row['cpu_floor_overhead_us_per_step']:+,.0f}), "
            f"{verdict} the goal (<= {GOAL_US:.0f}); bare loop {row['bare_overhead_us_per_step']:+,.0f} wall "
            f"({row['bare_cpu_overhead_us_per_step']:+,.0f} CPU)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", nargs="+", type=int, default=[16, 128])
    ap.add_argument("--pairs", type=int, help="paired epochs per variant, after one warm-up pair (default: --steps)")
    ap.add_argument("--steps", type=int, default=2160,
                    help="steps per variant, as whole epochs: 24 epochs at batch 16, 180 at batch 128; the same number "
                         "of steps at every batch size (24 epochs at batch 128 moved the median by +-100 us a step)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = [measure(batch, args.pairs, args.steps) for batch in args.batches]
    result = {"meta": {"torch": torch.__version__, "threads": torch.get_num_threads()}, "rows": rows,
              "all_meet_goal": all(r["meets_goal"] for r in rows)}
    text = json.dumps(result, indent=1)
    print(text)
    for row in rows:
        print(line(row))
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
