"""Checks on the data: labels in range, class balance, and whether inputs are normalized."""
from __future__ import annotations

from typing import Any

import torch

from trainlib.data.datasets import ImageSplits
from trainlib.data.splits import SPLITS

Problem = tuple[str, dict[str, Any]]  # message, evidence

# a normalized input has mean ~0 and std ~1 per channel; these bounds only catch the far-off
MAX_ABS_MEAN = 1.0
STD_RANGE = (0.2, 5.0)


def labels_out_of_range(data: ImageSplits) -> Problem | None:
    for name in SPLITS:
        labels = data.split(name).labels
        bad = (labels < 0) | (labels >= data.num_classes)
        if bad.any():
            values = sorted(set(labels[bad].tolist()))[:5]
            return (f"{int(bad.sum())} {name} labels outside 0..{data.num_classes - 1} (e.g. {values})",
                    {"split": name, "count": int(bad.sum()), "examples": values, "num_classes": data.num_classes})
    return None


def class_imbalance(labels: torch.Tensor, class_names: list[str], max_ratio: float) -> Problem | None:
    counts = torch.bincount(labels.clamp(min=0), minlength=len(class_names))[:len(class_names)]
    most, least = int(counts.max()), int(counts.min())
    if least * max_ratio >= most:
        return None
    rare = class_names[int(counts.argmin())]
    common = class_names[int(counts.argmax())]
    ratio = f"{most / least:.1f}x" if least else "no samples of a class"
    return (f"train classes are imbalanced: '{common}' has {most} samples, '{rare}' {least} ({ratio})",
            {"counts": dict(zip(class_names, counts.tolist()))})


def inputs_not_normalized(x: torch.Tensor) -> Problem | None:
    """A float batch (N, C, H, W) (or (N, crops, C, H, W)) whose per-channel stats are far from mean 0 / std 1."""
    x = x.flatten(0, -4)
    flat = x.detach().float().transpose(0, 1).reshape(x.shape[1], -1)
    mean, std = flat.mean(1), flat.std(1)
    low, high = STD_RANGE
    if bool((mean.abs() <= MAX_ABS_MEAN).all() and ((std >= low) & (std <= high)).all()):
        return None
    means, stds = [round(v, 3) for v in mean.tolist()], [round(v, 3) for v in std.tolist()]
    return (f"inputs are not normalized: per-channel mean {means}, std {stds} (expected about 0 and 1)",
            {"mean": means, "std": stds, "min": float(x.min()), "max": float(x.max())})
