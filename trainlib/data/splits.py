"""Per-class train/valid/test splitting (seed chapter 1.2), seeded."""
from __future__ import annotations

import numpy as np

from trainlib.errors import DataError

SPLITS = ("train", "valid", "test")


def check_ratios(ratios: list[float]) -> None:
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise DataError(f"split ratios must be three non-negative numbers summing to 1 (train, valid, test), not {ratios}")


def split_per_class(labels: np.ndarray, ratios: list[float], seed: int) -> dict[str, np.ndarray]:
    """Indices for each split: every class is shuffled and cut by `ratios` on its own."""
    check_ratios(ratios)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        n_train = int(round(len(idx) * ratios[0]))
        n_valid = int(round(len(idx) * ratios[1]))
        parts["train"].append(idx[:n_train])
        parts["valid"].append(idx[n_train:n_train + n_valid])
        parts["test"].append(idx[n_train + n_valid:])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}
