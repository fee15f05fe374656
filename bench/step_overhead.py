"""What trainlib adds to each training step: its epoch against a plain loop doing the same work.

The seed's Net on the bundled digits (1,437 train images, 32x32), in memory, one thread, at the
tutorial's batch 16 and at 128. Both loops do the same work per step: a random permutation of
the in-memory uint8 images, the batch normalised on the fly, forward, cross-entropy, backward,
SGD (lr 0.05, momentum 0.9, weight decay 5e-4), and the accuracy counted on the device.
  plain     a hand-written loop on the model object trainlib's `build_parts` built;
  trainlib  `trainlib.run.run` with its defaults on (MLflow + TensorBoardX tracking, visuals,
            diagnosis); its step time is its own `time/epoch_s` over the epoch's steps.
Each runs `--epochs` epochs (the first is warm-up, left out); the two are interleaved `--repeats`
times and each keeps its median. Prints microseconds per step and the difference, as JSON.

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

from trainlib.config import validate
from trainlib.observers import EpochObserver
from trainlib.run import build_parts, run

GOAL_US = 60.0
NORMALIZE_ONLY = {"train": [{"normalize": {}}], "eval": [{"normalize": {}}]}


def config(batch: int, epochs: int, out: Path) -> dict[str, Any]:
    return {"batch_size": batch, "epochs": epochs, "threads": 1, "device": "cpu", "loader": {"mode": "memory"},
            "transforms": NORMALIZE_ONLY, "output": {"dir": str(out / "runs")},
            "tracking": {"uri": f"sqlite:///{out / 'mlflow.db'}", "experiment": "step_overhead", "log_model": False}}


def plain_us_per_step(cfg: dict[str, Any]) -> tuple[float, int]:
    """The plain loop's median epoch (after the first), in microseconds per step; the train images."""
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
        start = time.perf_counter()
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
        times.append(time.perf_counter() - start)
    return 1e6 * statistics.median(times[1:]) / steps(n, batch), n


def trainlib_us_per_step(cfg: dict[str, Any], n: int) -> float:
    """trainlib's median epoch (after the first) of `n` train images, in microseconds per step."""
    seconds: list[float] = []
    run(cfg, observers=[EpochObserver(lambda r: seconds.append(r.metrics["time/epoch_s"]))], progress=False,
        echo=lambda line: None)
    return 1e6 * statistics.median(seconds[1:]) / steps(n, cfg["batch_size"])


def steps(n: int, batch: int) -> int:
    return -(-n // batch)


def measure(batch: int, args: argparse.Namespace) -> dict[str, Any]:
    plain, trainlib = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            us, n = plain_us_per_step(config(batch, args.epochs, Path(tmp)))
            plain.append(us)
            trainlib.append(trainlib_us_per_step(config(batch, args.epochs, Path(tmp)), n))
    p, t = statistics.median(plain), statistics.median(trainlib)
    return {"batch": batch, "plain_us_per_step": round(p, 1), "trainlib_us_per_step": round(t, 1),
            "overhead_us_per_step": round(t - p, 1), "goal_us": GOAL_US, "meets_goal": t - p <= GOAL_US,
            "repeats_plain": [round(v, 1) for v in plain], "repeats_trainlib": [round(v, 1) for v in trainlib]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", nargs="+", type=int, default=[16, 128])
    ap.add_argument("--epochs", type=int, default=4, help="per measurement; the first is warm-up")
    ap.add_argument("--repeats", type=int, default=5, help="interleaved repeats of plain and trainlib")
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
