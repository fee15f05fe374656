"""Faulty datasets the diagnosis tests plant, registered on a copy of the dataset registry
(gone after the `planted_datasets()` block, so the registry-parametrized tests never see them)."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from trainlib.data.datasets import DATASETS, DIGITS_TRANSFORMS, ImageSplits, TensorImages, digits


def imbalanced_digits() -> ImageSplits:
    """digits with all of class 0 but only every 8th sample of the other classes in train."""
    data = digits()
    labels = data.train.labels
    keep = (labels == 0) | (torch.arange(len(labels)) % 8 == 0)
    return ImageSplits(TensorImages(data.train.images[keep], labels[keep]), data.valid, data.test, data.class_names)


def shuffled_labels_digits() -> ImageSplits:
    """digits whose train labels are permuted (mis-joined label file): they carry no signal."""
    data = digits()
    labels = data.train.labels[torch.randperm(len(data.train.labels), generator=torch.Generator().manual_seed(1))]
    return ImageSplits(TensorImages(data.train.images, labels), data.valid, data.test, data.class_names)


def blank_digits() -> ImageSplits:
    """digits whose train images all decode as black: the inputs never reach the model."""
    data = digits()
    blank = TensorImages(torch.zeros_like(data.train.images), data.train.labels)
    return ImageSplits(blank, data.valid, data.test, data.class_names, mean=data.mean, std=data.std)


# name -> (build, transforms the registry entry declares)
PLANTED = {"imbalanced_digits_for_test": (imbalanced_digits, {}),
           "shuffled_labels_digits_for_test": (shuffled_labels_digits, DIGITS_TRANSFORMS),
           "blank_digits_for_test": (blank_digits, DIGITS_TRANSFORMS)}


@contextmanager
def planted_datasets():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(DATASETS, "_entries", dict(DATASETS._entries))
        for name, (build, transforms) in PLANTED.items():
            DATASETS.register(name, transforms=transforms)(build)
        yield
