"""The `fake` dataset: random images for benchmarks and smoke tests (nothing to learn)."""
from __future__ import annotations

import torch

from trainlib import entry_checks
from trainlib.data.datasets import DATASETS, PHOTO_TRANSFORMS, ImageSplits, splits_from_arrays
from trainlib.validation import PositiveInt


@DATASETS.register("fake", transforms=PHOTO_TRANSFORMS, check=entry_checks.samples_per_class)
def fake(*, num_samples: PositiveInt = 2048, num_classes: PositiveInt = 10, image_size: PositiveInt = 32,
         seed: int = 0) -> ImageSplits:
    """Random uint8 RGB images with balanced random labels, split 80/10/10 per class (benchmarks only)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (num_samples, 3, image_size, image_size), dtype=torch.uint8, generator=generator)
    labels = torch.arange(num_samples) % num_classes
    labels = labels[torch.randperm(num_samples, generator=generator)]
    return splits_from_arrays(images, labels.numpy(), [f"class{i}" for i in range(num_classes)], [0.8, 0.1, 0.1], seed)
