"""Transform registry (seed chapter 1.6): per-sample image transforms by name.

Pipelines are config lists such as ``[{random_crop: {size: 32, padding: 4}}, normalize]``.
Every transform takes and returns a CHW image tensor (uint8 until `normalize` turns it
into float); `TransformContext` supplies what a transform needs from the data (the
train split's per-channel mean/std, the image size).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torchvision.transforms import v2

from trainlib.errors import ConfigError
from trainlib.registry import Registry

TRANSFORMS = Registry("transform")


def list_transforms() -> list[str]:
    return TRANSFORMS.names()


@dataclass(frozen=True)
class TransformContext:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int


def parse_pipeline(items: list[Any] | None, where: str) -> list[dict] | None:
    """Turn ``[name | {name: {params}}]`` into validated ``[{name: ..., **params}]``."""
    if items is None:
        return None
    if not isinstance(items, list):
        raise ConfigError(f"'{where}' must be a list of transforms, e.g. [random_crop, normalize]")
    specs = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            name, params = item, {}
        elif isinstance(item, dict) and "name" in item:
            name, params = item["name"], {k: v for k, v in item.items() if k != "name"}
        elif isinstance(item, dict) and len(item) == 1:
            name, params = next(iter(item.items()))
            params = params or {}
        else:
            raise ConfigError(f"'{where}[{i}]' must be a name or {{name: {{params}}}}, not {item!r}")
        if not isinstance(params, dict):
            raise ConfigError(f"'{where}[{i}]' parameters must be a mapping, not {params!r}")
        specs.append({"name": name, **TRANSFORMS.validate(name, params, f"{where}[{i}]")})
    return specs


def build_pipeline(specs: list[dict], ctx: TransformContext) -> Callable[[torch.Tensor], torch.Tensor]:
    steps = [TRANSFORMS.build(spec, ctx) for spec in specs]
    steps.append(_to_float)
    return v2.Compose(steps)


def _to_float(img: torch.Tensor) -> torch.Tensor:
    """Make the pipeline's output a float image even when it has no `normalize` step."""
    return img.float().div_(255) if img.dtype == torch.uint8 else img


@TRANSFORMS.register("random_crop")
def random_crop(ctx: TransformContext, *, size: int = 0, padding: int = 4,
                padding_mode: str = "constant") -> Callable:
    """RandomCrop of `size` (0: the image size) after padding each side by `padding`."""
    return v2.RandomCrop(size or ctx.image_size, padding=padding, padding_mode=padding_mode)


@TRANSFORMS.register("random_horizontal_flip")
def random_horizontal_flip(ctx: TransformContext, *, p: float = 0.5) -> Callable:
    """Flip left-right with probability p."""
    return v2.RandomHorizontalFlip(p)


@TRANSFORMS.register("normalize")
def normalize(ctx: TransformContext, *, mean: list[float] | None = None,
              std: list[float] | None = None) -> Callable:
    """Scale to [0, 1] and normalize per channel (default: the train split's mean/std)."""
    return v2.Compose([
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(mean or ctx.mean), list(std or ctx.std)),
    ])
