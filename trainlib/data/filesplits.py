"""Splits read from image files (folder trees, txt lists): decoded into memory when they fit,
otherwise kept on disk and decoded per sample."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from trainlib.data.datasets import ImageSplits, TensorImages
from trainlib.data.imagefiles import FileImages, check_files, decode, decode_all, image_size
from trainlib.data.splits import SPLITS
from trainlib.data.stats import ChannelMoments, read_stats
from trainlib.errors import DataError


@dataclass
class FileList:
    """One split as listed on disk: image paths and their class ids."""

    paths: list[Path]
    labels: list[int]


def load_file_splits(lists: dict[str, FileList], class_names: list[str], stats_dir: Path,
                     resize: int, max_memory_mb: int) -> ImageSplits:
    """Every image is checked now, so a bad file fails before any run starts (naming the file)."""
    for name in SPLITS:
        if not lists[name].paths:
            raise DataError(f"the {name} split has no images (in {stats_dir})")
    shape = (3, resize, resize) if resize else (3, *image_size(lists["train"].paths[0]))
    total_bytes = sum(len(lists[name].paths) for name in SPLITS) * math.prod(shape)
    if total_bytes <= max_memory_mb * 2**20:
        splits = {name: TensorImages(decode_all(lists[name].paths, shape, resize), _labels(lists[name]))
                  for name in SPLITS}
    else:
        for name in SPLITS:
            check_files(lists[name].paths, None if resize else shape)
        splits = {name: FileImages(lists[name].paths, _labels(lists[name]), shape, resize) for name in SPLITS}
    stats = read_stats(stats_dir, channels=3)
    if stats is None and isinstance(splits["train"], FileImages):
        stats = _streamed_stats(splits["train"])
    mean, std = stats or ((), ())
    return ImageSplits(splits["train"], splits["valid"], splits["test"], class_names, mean, std)


def _labels(files: FileList) -> torch.Tensor:
    return torch.as_tensor(files.labels, dtype=torch.int64)


def _streamed_stats(split: FileImages) -> tuple[tuple[float, ...], tuple[float, ...]]:
    moments = ChannelMoments()
    for path in split.paths:
        moments.add(decode(path, split.resize))
    return moments.mean_std()
