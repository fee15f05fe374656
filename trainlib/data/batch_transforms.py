"""Batch versions of the per-sample transforms, for in-memory data augmented on its device.

Each op takes a uint8 or float (N, C, H, W) batch on the training device and a CPU
`torch.Generator`; every sample gets its own random draw, made with tensor ops (no PIL,
no per-sample Python). Random numbers come from the generator on the CPU (a few values
per sample) so the loader's state is one CPU generator that checkpoints save and restore.
A transform spec has a batch version when its name is here and it sets no parameter the
batch version does not know.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from trainlib.errors import ConfigError

BatchOp = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class BatchContext:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int
    device: torch.device


@dataclass(frozen=True)
class BatchEntry:
    builder: Callable[..., BatchOp]
    params: frozenset[str]


BATCH_OPS: dict[str, BatchEntry] = {}


def batch_op(name: str, *params: str):
    def add(builder: Callable[..., BatchOp]) -> Callable[..., BatchOp]:
        BATCH_OPS[name] = BatchEntry(builder, frozenset(params))
        return builder
    return add


def has_batch_version(spec: dict) -> bool:
    entry = BATCH_OPS.get(spec["name"])
    return entry is not None and set(spec) - {"name"} <= entry.params


def without_batch_version(specs: list[dict]) -> list[str]:
    return [spec["name"] for spec in specs if not has_batch_version(spec)]


def require_batch_versions(specs: list[dict]) -> None:
    missing = without_batch_version(specs)
    if missing:
        raise ConfigError(f"transform '{missing[0]}' (with these parameters) has no batch version for "
                          f"loader.mode=memory; those with one: {', '.join(sorted(BATCH_OPS))}")


def build_batch_pipeline(specs: list[dict], ctx: BatchContext) -> BatchOp:
    """Compose the batch ops; the output is float (scaled to [0, 1] when nothing normalized it)."""
    require_batch_versions(specs)
    ops = [BATCH_OPS[s["name"]].builder(ctx, **{k: v for k, v in s.items() if k != "name"})
           for s in fold_to_tensor(specs)]

    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for op in ops:
            x = op(x, generator)
        return to_float(x)
    return apply


def to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255) if x.dtype == torch.uint8 else x


def fold_to_tensor(specs: list[dict]) -> list[dict]:
    """Drop a `to_tensor` right before `normalize`: normalize's multiply-add on uint8 scales by 1/255 itself."""
    return [s for s, after in zip(specs, [*specs[1:], None])
            if not (s["name"] == "to_tensor" and after is not None and after["name"] == "normalize")]


def source_index(pos: torch.Tensor, length: int, mode: str) -> torch.Tensor:
    """Map coordinates of a padded image (may be < 0 or >= length) to source pixels, as torchvision pads."""
    if mode == "edge" or length == 1:
        return pos.clamp(0, length - 1)
    if mode == "reflect":  # ... 2 1 | 0 1 2 | 1 0 ...
        period = 2 * (length - 1)
        pos = pos.remainder(period)
        return torch.where(pos >= length, period - pos, pos)
    if mode == "symmetric":  # ... 1 0 | 0 1 2 | 2 1 ...
        period = 2 * length
        pos = pos.remainder(period)
        return torch.where(pos >= length, period - 1 - pos, pos)
    raise ConfigError(f"unknown padding_mode '{mode}'; valid: constant, edge, reflect, symmetric")


@batch_op("random_crop", "size", "padding", "padding_mode", "fill")
def random_crop(ctx: BatchContext, *, size: int = 0, padding: int = 4, padding_mode: str = "constant",
                fill: int = 0) -> BatchOp:
    size = size or ctx.image_size
    if ctx.image_size + 2 * padding < size:
        raise ConfigError(f"random_crop size {size} is larger than the padded image ({ctx.image_size} + 2 x {padding})")
    if padding_mode != "constant":
        source_index(torch.zeros(1, dtype=torch.long), 2, padding_mode)  # unknown modes fail now, not mid-epoch
    offsets = torch.arange(size) - padding

    def crop(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, c, h, w = x.shape
        top = torch.randint(0, h + 2 * padding - size + 1, (n, 1), generator=generator) + offsets
        left = torch.randint(0, w + 2 * padding - size + 1, (n, 1), generator=generator) + offsets
        if padding_mode == "constant":
            x, h, w = F.pad(x, [padding] * 4, value=fill), h + 2 * padding, w + 2 * padding
            rows, cols = top + padding, left + padding
        else:
            rows, cols = source_index(top, h, padding_mode), source_index(left, w, padding_mode)
        # one gather over flattened pixels (uint8 gathers are slow on CPU: do a single one)
        flat = (rows[:, :, None] * w + cols[:, None, :]).view(n, 1, size * size).to(x.device, non_blocking=True)
        return x.reshape(n, c, h * w).gather(2, flat.expand(n, c, size * size)).view(n, c, size, size)
    return crop


def _random_flip(dim: int, p: float) -> BatchOp:
    def flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        chosen = (torch.rand(x.shape[0], generator=generator) < p).to(x.device, non_blocking=True)
        return torch.where(chosen[:, None, None, None], x.flip(dim), x)
    return flip


@batch_op("random_horizontal_flip", "p")
def random_horizontal_flip(ctx: BatchContext, *, p: float = 0.5) -> BatchOp:
    return _random_flip(3, p)


@batch_op("random_vertical_flip", "p")
def random_vertical_flip(ctx: BatchContext, *, p: float = 0.5) -> BatchOp:
    return _random_flip(2, p)


@batch_op("to_tensor")
def to_tensor(ctx: BatchContext) -> BatchOp:
    """uint8 -> float in [0, 1], as torchvision's ToTensor; float batches pass unchanged."""
    return lambda x, generator: to_float(x)


@batch_op("normalize", "mean", "std")
def normalize(ctx: BatchContext, *, mean: list[float] | None = None, std: list[float] | None = None) -> BatchOp:
    mean_t = torch.tensor(list(mean or ctx.mean), dtype=torch.float32, device=ctx.device).view(1, -1, 1, 1)
    std_t = torch.tensor(list(std or ctx.std), dtype=torch.float32, device=ctx.device).view(1, -1, 1, 1)
    # (x / 255 - mean) / std as one multiply-add on uint8 input
    scale, shift = 1 / (255 * std_t), -mean_t / std_t

    def norm(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if x.dtype == torch.uint8:
            return torch.addcmul(shift, x.float(), scale)
        return torch.addcmul(shift, x, 1 / std_t)
    return norm
