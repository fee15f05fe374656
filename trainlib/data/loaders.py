"""Batches for training and evaluation from in-memory splits."""
from __future__ import annotations

from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset

from trainlib.data.datasets import TensorImages


class TransformedImages(Dataset):
    """A split whose samples pass through a per-sample transform pipeline."""

    def __init__(self, split: TensorImages, transform: Callable[[torch.Tensor], torch.Tensor]):
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.split.images[i]), self.split.labels[i]


def make_loader(split: TensorImages, transform: Callable, batch_size: int, *, shuffle: bool,
                generator: torch.Generator | None = None, num_workers: int = 0,
                pin_memory: bool = False) -> DataLoader:
    return DataLoader(
        TransformedImages(split, transform),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        drop_last=False,
    )
