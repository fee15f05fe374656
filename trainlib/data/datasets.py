"""Dataset registry: each entry returns the train/valid/test splits as in-memory uint8 images."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from trainlib.data.splits import split_per_class
from trainlib.registry import Registry

DATASETS = Registry("dataset")


def list_datasets() -> list[str]:
    return DATASETS.names()


@dataclass
class TensorImages:
    """One split: uint8 images (N, C, H, W) and int64 class ids (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ImageSplits:
    train: TensorImages
    valid: TensorImages
    test: TensorImages
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
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[-1]

    def split(self, name: str) -> TensorImages:
        return getattr(self, name)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images, in [0, 1] units (seed chapter 1.5)."""
    x = images.float().div_(255).transpose(0, 1).reshape(images.shape[1], -1)
    return tuple(x.mean(1).tolist()), tuple(x.std(1).tolist())


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


DIGITS_TRANSFORMS = {
    "train": [{"name": "random_crop", "size": 0, "padding": 2, "padding_mode": "constant"},
              {"name": "normalize", "mean": None, "std": None}],
    "eval": [{"name": "normalize", "mean": None, "std": None}],
}


@DATASETS.register("digits", transforms=DIGITS_TRANSFORMS)
def digits(*, image_size: int = 32, split: list[float] = [0.8, 0.1, 0.1], split_seed: int = 0) -> ImageSplits:
    """scikit-learn's bundled 1,797 handwritten 8x8 digits, upscaled to RGB, split 80/10/10 per class."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    big = F.interpolate(small, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = (big.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
    class_names = [str(c) for c in bunch.target_names]
    return splits_from_arrays(images, bunch.target, class_names, split, split_seed)
