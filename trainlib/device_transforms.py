"""Device versions of per-sample transforms, for in-memory data augmented on its device
(`loader.mode=memory`). Not to be confused with batch transforms (`transforms.batch`: mixup,
cutmix), which mix the samples of a batch.

A builder here takes a DeviceContext and the transform's parameters (a subset of its
TRANSFORMS entry's) and returns an op. Each op takes a uint8 or float (N, C, H, W) batch on the
training device and a CPU `torch.Generator`; every sample gets its own random draw, made with
tensor ops (no PIL, no per-sample Python). Random numbers come from the generator on the CPU
(a few values per sample) so the loader's state is one CPU generator that checkpoints save and
restore. Each is attached to its transform's entry (`TRANSFORMS.register(..., device=...)`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from trainlib.errors import ConfigError

DeviceOp = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class DeviceContext:
    """What the device versions need from the data (TransformContext's counterpart) and where they run."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int
    device: torch.device


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


def random_crop(ctx: DeviceContext, *, size: int = 0, padding: int = 4, padding_mode: str = "constant",
                fill: int = 0) -> DeviceOp:
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


def _random_flip(dim: int, p: float) -> DeviceOp:
    def flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        chosen = (torch.rand(x.shape[0], generator=generator) < p).to(x.device, non_blocking=True)
        return torch.where(chosen[:, None, None, None], x.flip(dim), x)
    return flip


def random_horizontal_flip(ctx: DeviceContext, *, p: float = 0.5) -> DeviceOp:
    return _random_flip(3, p)


def random_vertical_flip(ctx: DeviceContext, *, p: float = 0.5) -> DeviceOp:
    return _random_flip(2, p)


def resize(ctx: DeviceContext, *, size: int = 0, interpolation: str = "bilinear", antialias: bool = True) -> DeviceOp:
    """torchvision's own resize over the batch: the same kernel per image (a no-op at the same size)."""
    from torchvision.transforms.v2 import functional as TF  # torchvision only where it is used

    shape = [size or ctx.image_size] * 2
    return lambda x, generator: TF.resize(x, shape, interpolation=interpolation, antialias=antialias)


def center_crop(ctx: DeviceContext, *, size: int = 0) -> DeviceOp:
    """torchvision's own center crop over the batch (zero-padded when the crop is larger)."""
    from torchvision.transforms.v2 import functional as TF

    shape = [size or ctx.image_size] * 2
    return lambda x, generator: TF.center_crop(x, shape)


def to_tensor(ctx: DeviceContext) -> DeviceOp:
    """uint8 -> float in [0, 1], as torchvision's ToTensor; float batches pass unchanged."""
    return lambda x, generator: x.float().div_(255) if x.dtype == torch.uint8 else x


def normalize(ctx: DeviceContext, *, mean: list[float] | None = None, std: list[float] | None = None) -> DeviceOp:
    mean_t = torch.tensor(list(mean or ctx.mean), dtype=torch.float32, device=ctx.device).view(1, -1, 1, 1)
    std_t = torch.tensor(list(std or ctx.std), dtype=torch.float32, device=ctx.device).view(1, -1, 1, 1)
    # (x / 255 - mean) / std as one multiply-add on uint8 input
    scale, shift = 1 / (255 * std_t), -mean_t / std_t

    def norm(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if x.dtype == torch.uint8:
            return torch.addcmul(shift, x.float(), scale)
        return torch.addcmul(shift, x, 1 / std_t)
    return norm
