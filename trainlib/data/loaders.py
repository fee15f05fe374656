"""Batches for training and evaluation: the fast in-memory path or a DataLoader.

`build_loaders` picks the path (`loader.mode`): `memory` needs every split in memory and a
device version of every transform (see trainlib.transforms); `dataloader` runs the per-sample torchvision pipeline in
worker processes; `auto` takes `memory` whenever it can.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch.utils.data import DataLoader, Dataset

from trainlib.data.datasets import ImageSplits
from trainlib.data.fast import MemoryBatches, storage_device
from trainlib.device_transforms import DeviceContext
from trainlib.errors import ConfigError
from trainlib.transforms import (TransformContext, build_device_pipeline, build_pipeline, require_device_versions,
                                 without_device_version)

class TransformedImages(Dataset):
    """A split whose samples pass through a per-sample transform pipeline."""

    def __init__(self, split: Any, transform: Callable[[torch.Tensor], torch.Tensor]):
        self.split = split
        self.transform = transform

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.split[i]
        return self.transform(image), label


def make_loader(split: Any, transform: Callable, batch_size: int, *, shuffle: bool,
                generator: torch.Generator | None = None, num_workers: int = 0,
                pin_memory: bool = False, sampler: Iterable[int] | None = None) -> DataLoader:
    """`sampler` (with shuffle=False) picks the sample indices and their order, e.g. a DDP shard."""
    return DataLoader(
        TransformedImages(split, transform),
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        generator=generator,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        drop_last=False,
    )


def choose_mode(mode: str, data: ImageSplits, specs: dict[str, list[dict]]) -> str:
    """'memory' or 'dataloader' for the requested mode; a forced 'memory' that cannot work is an error."""
    if mode == "auto":
        on_device = not any(without_device_version(pipeline) for pipeline in specs.values())
        return "memory" if data.in_memory and on_device else "dataloader"
    if mode == "memory":
        if not data.in_memory:
            raise ConfigError("loader.mode=memory needs the dataset in memory, but it is larger than "
                              "data.max_memory_mb; raise that or use loader.mode=dataloader")
        for pipeline in specs.values():
            require_device_versions(pipeline)
    return mode


def build_loaders(data: ImageSplits, specs: dict[str, list[dict]], *, mode: str, batch_size: int,
                  num_workers: int, generator: torch.Generator, device: torch.device, seed: int = 0,
                  samplers: dict[str, Iterable[int]] | None = None) -> dict[str, Any]:
    """Loaders for train (shuffled by `generator`), valid and test, from transform specs {train, eval}.

    `samplers` (split -> sample indices in order, e.g. a DDP rank's shard; see trainlib.distributed)
    replace the shuffled / whole order of the splits they name; the loader keeps it as `.sampler`."""
    samplers = samplers or {}
    if choose_mode(mode, data, specs) == "memory":
        ctx = DeviceContext(data.mean, data.std, data.image_size, device)
        train_ops, eval_ops = build_device_pipeline(specs["train"], ctx), build_device_pipeline(specs["eval"], ctx)
        nbytes = sum(data.split(name).images.nbytes for name in ("train", "valid", "test"))
        storage = storage_device(nbytes, device)
        return {
            "train": MemoryBatches(data.train, train_ops, batch_size, device, storage, generator,
                                   sampler=samplers.get("train")),
            "valid": MemoryBatches(data.valid, eval_ops, batch_size, device, storage, eval_seed=seed,
                                   sampler=samplers.get("valid")),
            "test": MemoryBatches(data.test, eval_ops, batch_size, device, storage, eval_seed=seed,
                                  sampler=samplers.get("test")),
        }
    ctx = TransformContext.from_splits(data)
    train_tf, eval_tf = build_pipeline(specs["train"], ctx), build_pipeline(specs["eval"], ctx)
    common = {"batch_size": batch_size, "num_workers": num_workers, "pin_memory": device.type == "cuda"}
    return {
        "train": make_loader(data.train, train_tf, shuffle="train" not in samplers, generator=generator,
                             sampler=samplers.get("train"), **common),
        "valid": make_loader(data.valid, eval_tf, shuffle=False, sampler=samplers.get("valid"), **common),
        "test": make_loader(data.test, eval_tf, shuffle=False, sampler=samplers.get("test"), **common),
    }
