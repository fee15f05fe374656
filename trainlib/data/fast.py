"""The fast path: a split held as one uint8 tensor (on the GPU when training there), cut into
batches over a seeded permutation and augmented on the device, batch at a time."""
from __future__ import annotations

import math
from typing import Iterable, Iterator

import torch

from trainlib.data.datasets import TensorImages
from trainlib.device_transforms import DeviceOp

# keep all splits resident on a GPU while they take at most this share of its free memory
GPU_SHARE = 0.25


def storage_device(nbytes: int, device: torch.device) -> torch.device:
    """Where the uint8 images live: on `device` when they fit, else in host memory."""
    if device.type != "cuda":
        return device
    free, _ = torch.cuda.mem_get_info(device)
    return device if nbytes <= GPU_SHARE * free else torch.device("cpu")


class MemoryBatches:
    """Iterable of (float images, labels) batches on `device`, like a DataLoader without workers.

    Training batches follow a permutation drawn from `generator` and consume it for the
    augmentations too, so saving and restoring that one generator resumes a run exactly.
    Without a generator (evaluation) the order is fixed and any random op is re-seeded per pass.
    A `sampler` (sample indices, e.g. a DDP rank's shard) gives the order instead.
    """

    def __init__(self, split: TensorImages, transform: DeviceOp, batch_size: int, device: torch.device,
                 storage: torch.device, generator: torch.Generator | None = None, eval_seed: int = 0,
                 sampler: Iterable[int] | None = None):
        self.images = split.images.to(storage)
        self.labels = split.labels.to(storage)
        self.transform = transform
        self.batch_size = batch_size
        self.device = device
        self.generator = generator
        self.eval_seed = eval_seed
        self.sampler = sampler
        self.moves = storage != device  # batches are copied to the device (else already there)

    def __len__(self) -> int:
        return math.ceil(self.num_samples() / self.batch_size)

    def num_samples(self) -> int:
        return len(self.labels) if self.sampler is None else len(self.sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = self.generator if self.generator is not None else torch.Generator().manual_seed(self.eval_seed)
        order = self.order(generator)
        for start in range(0, self.num_samples(), self.batch_size):
            idx = slice(start, start + self.batch_size) if order is None else order[start:start + self.batch_size]
            x, y = self.images[idx], self.labels[idx]
            if self.moves:
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            yield self.transform(x, generator), y

    def order(self, generator: torch.Generator) -> torch.Tensor | None:
        """Sample indices in batch order: the sampler's, a fresh permutation (training), or None (as stored)."""
        if self.sampler is not None:
            indices = torch.as_tensor(list(self.sampler), dtype=torch.long)
        elif self.generator is not None:
            indices = torch.randperm(len(self.labels), generator=generator)
        else:
            return None
        return indices.to(self.images.device, non_blocking=True)
