"""Per-channel mean/std of uint8 images (seed chapter 1.5) and the `stats.json` that stores them."""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import torch

from trainlib.errors import DataError

STATS_FILE = "stats.json"


class ChannelMoments:
    """Running per-channel sums of uint8 pixels; integer sums keep the result independent of chunking."""

    def __init__(self) -> None:
        self.count = 0
        self.sum: torch.Tensor | None = None
        self.sum_sq: torch.Tensor | None = None

    def add(self, images: torch.Tensor) -> None:
        """Add a (C, H, W) image or an (N, C, H, W) batch of uint8 images."""
        flat = images.reshape(-1, *images.shape[-3:]).transpose(0, 1).reshape(images.shape[-3], -1).long()
        sums, sums_sq = flat.sum(1), (flat * flat).sum(1)
        self.sum = sums if self.sum is None else self.sum + sums
        self.sum_sq = sums_sq if self.sum_sq is None else self.sum_sq + sums_sq
        self.count += flat.shape[1]

    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Mean and (unbiased) std in [0, 1] units."""
        if self.sum is None or self.count < 2:
            raise DataError("cannot compute mean/std: no images")
        n = self.count
        mean = [s / n for s in self.sum.tolist()]
        var = [(sq - s * s / n) / (n - 1) for s, sq in zip(self.sum.tolist(), self.sum_sq.tolist())]
        return tuple(m / 255 for m in mean), tuple(math.sqrt(max(v, 0.0)) / 255 for v in var)


def channel_stats(images: torch.Tensor, chunk: int = 1024) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean/std of an (N, C, H, W) uint8 tensor, in chunks so large sets need little extra memory."""
    moments = ChannelMoments()
    for start in range(0, len(images), chunk):
        moments.add(images[start:start + chunk])
    return moments.mean_std()


def write_stats(folder: Path, mean: tuple[float, ...], std: tuple[float, ...], images: int) -> Path:
    path = folder / STATS_FILE
    text = json.dumps({"mean": list(mean), "std": list(std), "images": images}, indent=1) + "\n"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{STATS_FILE}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def read_stats(folder: Path, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """The mean/std in `folder/stats.json`, or None when there is no such file."""
    path = folder / STATS_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        mean, std = tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a stats file with 'mean' and 'std' lists ({type(exc).__name__})") from None
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise DataError(f"{path} must hold {channels} means and {channels} positive stds, not {mean} / {std}")
    return mean, std
