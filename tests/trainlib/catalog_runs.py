"""Short digits runs proving that every loss and optimizer trains Net (slow tests, bench/catalog_table.py).

The budget and the bar are fixed here: EPOCHS epochs (EPOCHS_FOR names the few that need more) of
the digits train split (1,437 images, batch 64, no augmentation, PyTorch's default init), then
valid accuracy >= ACC_BAR
(chance is 10%). Losses train with Adam at LOSS_LR (default DEFAULT_LR); optimizers
train cross_entropy with OPTIMIZER_PARAMS on top of their registry defaults.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from trainlib.observers import EpochObserver

EPOCHS = 2
# the slower starters, still under the bar after 2 epochs (measured 2026-12-06), get a third
EPOCHS_FOR = {"sgd": 3, "asgd": 3, "triplet_margin": 3}
ACC_BAR = 0.6
DEFAULT_LR = 3e-3
LOSS_LR = {  # sigmoid / Poisson (one-vs-rest) losses get small gradients per logit
    "bce": 1e-2, "bce_with_logits": 1e-2, "multilabel_soft_margin": 1e-2, "soft_margin": 1e-2, "poisson_nll": 1e-2,
}
OPTIMIZER_PARAMS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.05},
    "asgd": {"lr": 0.1},
    "radam": {"lr": 3e-3},
    "rmsprop": {"lr": 1e-3},
    # 4 closure evaluations per batch instead of 20 keep the run short; the line search keeps it stable
    "lbfgs": {"max_iter": 4, "history_size": 10, "line_search_fn": "strong_wolfe"},
}


def short_run_config(out_dir: Path, *, loss: str = "cross_entropy", optimizer: dict | None = None) -> dict:
    return {
        "model": "net", "data": {"name": "digits"}, "init": "default", "scheduler": "constant",
        "loss": loss, "optimizer": optimizer or {"name": "adam", "lr": LOSS_LR.get(loss, DEFAULT_LR)},
        "transforms": {"train": ["normalize"]}, "epochs": epochs_for(loss, optimizer), "batch_size": 64, "seed": 0,
        "device": "cpu",
        "tracking": {"mlflow": False, "tensorboard": False}, "output": {"dir": str(out_dir)},
    }


def epochs_for(loss: str, optimizer: dict | None) -> int:
    return max(EPOCHS_FOR.get(loss, EPOCHS), EPOCHS_FOR.get((optimizer or {}).get("name", ""), EPOCHS))


def optimizer_spec(name: str) -> dict[str, Any]:
    return {"name": name, **OPTIMIZER_PARAMS.get(name, {})}


def train(config: dict) -> dict[str, Any]:
    """Run it; returns the final metrics plus `train_losses` (per epoch) and `seconds`."""
    from trainlib.run import run

    losses: list[float] = []
    start = time.perf_counter()
    final = run(config, observers=[EpochObserver(lambda report: losses.append(report.metrics["train/loss"]))],
                progress=False, echo=lambda line: None)
    return {**final, "train_losses": losses, "seconds": time.perf_counter() - start}
