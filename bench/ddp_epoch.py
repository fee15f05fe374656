"""Benchmark one training epoch of the default job: 1 process vs Ray Train with 1 and 2 workers.

Same data (digits, 1,438 train images), model (Net), per-worker batch (32) and no tracking.
`time/epoch_s` is the train pass of one epoch (under DDP: the slowest rank's); the first
epoch warms up and is left out. On a small CPU box the workers share its cores: read the
2-worker figure as the cost/benefit of DDP here, not as a GPU-cluster speed-up. A Ray Train
worker gets one torch thread per CPU it reserves (1 here); the single process is measured
with 1 thread and with one per core.

Usage: python bench/ddp_epoch.py [--epochs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import torch


def config(workdir: Path, epochs: int) -> dict:
    return {"epochs": epochs, "output": {"dir": str(workdir / "runs")},
            "tracking": {"mlflow": False, "tensorboard": False}}


def single_process(workdir: Path, epochs: int, threads: int) -> list[dict]:
    from trainlib.observers import EpochObserver
    from trainlib.run import run

    reports = []
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        run(config(workdir, epochs), progress=False, echo=lambda _: None, observers=[EpochObserver(reports.append)])
    finally:
        torch.set_num_threads(before)
    return [r.metrics for r in reports]


def ray_train(workdir: Path, epochs: int, workers: int) -> list[dict]:
    from ray.train import CheckpointConfig, LoggingConfig, RunConfig

    from launcher.cluster.ddp import make_trainer

    storage = str(workdir / f"ray-{workers}")
    run_config = RunConfig(storage_path=storage, logging_config=LoggingConfig(log_level="ERROR"),
                           checkpoint_config=CheckpointConfig(num_to_keep=None))  # keep each epoch's report
    result = make_trainer(config(workdir, epochs), workers=workers, run_config=run_config).fit()
    return result.metrics_dataframe.to_dict("records")


def summary(epochs: list[dict]) -> dict:
    steady = epochs[1:]
    return {"epoch_s": round(statistics.median(e["time/epoch_s"] for e in steady), 3),
            "img_per_s": round(statistics.median(e["time/img_per_s"] for e in steady))}


def main() -> None:
    from launcher.cluster.local_ray import start_local_ray

    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    start_local_ray(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result = {
            "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}",
            "1 process, 1 torch thread": summary(single_process(work, args.epochs, 1)),
            f"1 process, {os.cpu_count()} torch threads": summary(single_process(work, args.epochs, os.cpu_count())),
            "Ray Train, 1 worker": summary(ray_train(work, args.epochs, 1)),
            "Ray Train, 2 workers": summary(ray_train(work, args.epochs, 2)),
        }
    result["load average after"] = round(os.getloadavg()[0], 1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
