"""Dataset registry: each entry returns the train/valid/test splits as uint8 images.

A split is either in memory (`TensorImages`, eligible for the fast on-device batch path)
or on disk (`imagefiles.FileImages`, decoded per sample by a DataLoader); both give
`len()`, `split[i] -> (uint8 CHW image, label)`, `.labels` and `.image_shape`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainlib import entry_checks
from trainlib.data.splits import split_per_class
from trainlib.data.stats import channel_stats
from trainlib.errors import DataError
from trainlib.signatures import DATASETS


def list_datasets() -> list[str]:
    return DATASETS.names()


@dataclass
class TensorImages:
    """One split: uint8 images (N, C, H, W) and int64 class ids (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])


@dataclass
class ImageSplits:
    train: Any  # TensorImages | FileImages
    valid: Any
    test: Any
    class_names: list[str]
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.mean:
            self.mean, self.std = channel_stats(self.train.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return self.train.image_shape[0]

    @property
    def image_size(self) -> int:
        return self.train.image_shape[-1]

    @property
    def in_memory(self) -> bool:
        return all(isinstance(self.split(name), TensorImages) for name in ("train", "valid", "test"))

    def split(self, name: str) -> TensorImages:
        return getattr(self, name)


def build_dataset(spec: dict) -> ImageSplits:
    return DATASETS.build(spec)


def splits_from_arrays(images: torch.Tensor, labels: np.ndarray, class_names: list[str],
                       ratios: list[float], seed: int) -> ImageSplits:
    index = split_per_class(labels, ratios, seed)
    targets = torch.as_tensor(labels, dtype=torch.int64)

    def take(name: str) -> TensorImages:
        idx = torch.as_tensor(index[name])
        return TensorImages(images[idx].contiguous(), targets[idx].contiguous())

    return ImageSplits(take("train"), take("valid"), take("test"), class_names)


# Default pipelines for 32x32 photos: the seed's crop-with-padding + flip, then normalize.
PHOTO_TRANSFORMS = {
    "train": [{"name": "random_crop", "size": 0, "padding": 4, "padding_mode": "constant"},
              {"name": "random_horizontal_flip", "p": 0.5},
              {"name": "normalize", "mean": None, "std": None}],
    "eval": [{"name": "normalize", "mean": None, "std": None}],
}

DIGITS_TRANSFORMS = {
    "train": [{"name": "random_crop", "size": 0, "padding": 2, "padding_mode": "constant"},
              {"name": "normalize", "mean": None, "std": None}],
    "eval": [{"name": "normalize", "mean": None, "std": None}],
}


def keep_classes(images: torch.Tensor, labels: np.ndarray, class_names: list[str],
                 classes: list[int] | None) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """Only the listed class ids, relabelled 0..k-1 in the listed order (e.g. to finetune on a subset)."""
    if classes is None:
        return images, labels, class_names
    keep = np.isin(labels, classes)
    new_id = np.full(len(class_names), -1)
    new_id[classes] = np.arange(len(classes))
    return images[torch.as_tensor(keep)], new_id[labels[keep]], [class_names[c] for c in classes]


@DATASETS.register("digits", transforms=DIGITS_TRANSFORMS, check=entry_checks.digit_classes)
def digits(*, image_size: int = 32, split: list[float] = [0.8, 0.1, 0.1], split_seed: int = 0,
           classes: list[int] | None = None) -> ImageSplits:
    """scikit-learn's bundled 1,797 handwritten 8x8 digits, upscaled to RGB, split 80/10/10 per class.

    `classes` keeps only those digits, relabelled 0..k-1 in the given order.
    """
    pixels, target = digits_arrays()
    small = torch.as_tensor(pixels, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    big = F.interpolate(small, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = (big.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
    class_names = [str(c) for c in range(10)]
    images, labels, class_names = keep_classes(images, target, class_names, classes)
    return splits_from_arrays(images, labels, class_names, split, split_seed)


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's `load_digits()` data (1797 x 64 pixels 0-16) and target, read from the file it
    ships without importing scikit-learn (its import is most of a default run's data time)."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the digits dataset comes with scikit-learn, which is not installed: pip install scikit-learn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, mode="rt", encoding="utf-8") as fh:
        data = np.loadtxt(fh, delimiter=",")
    return data[:, :-1], data[:, -1].astype(int, copy=False)


def dataset_root(root: str) -> Path:
    """The `root` of a dataset read from disk: it must be given and exist (checked when the
    dataset is built, so every entry still validates with its defaults)."""
    if not root:
        raise DataError("set data.root to the dataset's file or folder, e.g. -s data.root=data/cifar10")
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"data.root '{root}' does not exist")
    return path


def transform_specs(cfg: Any) -> dict[str, list[dict]]:
    """The train and eval pipelines of a TrainConfig: the config's, else the dataset's defaults."""
    defaults = DATASETS.get(cfg.data["name"]).meta.get("transforms", {})
    return {"train": cfg.transforms.train or defaults.get("train", []),
            "eval": cfg.transforms.eval or defaults.get("eval", [])}
