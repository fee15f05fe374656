"""Per-class train/valid/test splitting (seed chapter 1.2), seeded."""
from __future__ import annotations

import numpy as np

from trainlib.errors import DataError

SPLITS = ("train", "valid", "test")


def check_ratios(ratios: list[float]) -> None:
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise DataError(f"split ratios must be three non-negative numbers summing to 1 (train, valid, test), not {ratios}")


def parse_ratios(text: str) -> list[float]:
    """'0.8,0.1,0.1' -> [0.8, 0.1, 0.1], checked."""
    try:
        ratios = [float(part) for part in text.split(",")]
    except ValueError:
        raise DataError(f"split ratios must be three comma-separated numbers such as 0.8,0.1,0.1, not '{text}'") from None
    check_ratios(ratios)
    return ratios


def split_per_class(labels: np.ndarray, ratios: list[float], seed: int) -> dict[str, np.ndarray]:
    """Indices for each split: every class is shuffled and cut by `ratios` on its own.

    Cuts are rounded cumulatively, so every sample lands in exactly one split and a zero
    ratio always gives an empty split.
    """
    check_ratios(ratios)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        rng.shuffle(idx)
        cut_train = int(round(len(idx) * ratios[0]))
        cut_valid = len(idx) if ratios[2] == 0 else int(round(len(idx) * (ratios[0] + ratios[1])))
        parts["train"].append(idx[:cut_train])
        parts["valid"].append(idx[cut_train:cut_valid])
        parts["test"].append(idx[cut_valid:])
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}
