"""Image helpers shared by the visuals: fixed samples, display scaling, grids, layers by name."""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from trainlib.errors import ConfigError


def fixed_samples(loader, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `count` samples of an evaluation loader (fixed order): the same images every epoch,
    one view each (N, C, H, W) even when the eval pipeline makes crops."""
    xs, ys, seen = [], [], 0
    for x, y in loader:
        xs.append(one_view(x).cpu())
        ys.append(y.cpu())
        seen += len(y)
        if seen >= count:
            break
    return torch.cat(xs)[:count], torch.cat(ys)[:count]


def one_view(x: torch.Tensor) -> torch.Tensor:
    """A multi-crop batch (N, ncrops, C, H, W) from five_crop / ten_crop -> its center crops
    (index 4 in torchvision's order: four corners, then the center); a 4-D batch as it is."""
    if x.dim() != 5:
        return x
    return x[:, min(4, x.shape[1] - 1)]


def for_display(x: torch.Tensor) -> torch.Tensor:
    """Scale each image (N, C, H, W) to [0, 1] on its own (inputs are normalized, not pixels)."""
    x = x.detach().float().cpu()
    low = x.amin(dim=(1, 2, 3), keepdim=True)
    high = x.amax(dim=(1, 2, 3), keepdim=True)
    return (x - low) / (high - low).clamp(min=1e-12)


def grid(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """A (C, H, W) grid of images (N, C, H, W) already in [0, 1], `nrow` to a row, 1 px white between:
    torchvision's make_grid(padding=1, pad_value=1.0), pixel for pixel (one channel shown as three,
    one image unpadded), without importing torchvision (~1.5 s) into every run."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    if len(images) == 1:
        return images[0].clone()
    n, channels, height, width = images.shape
    columns = min(nrow, n)
    rows = math.ceil(n / columns)
    canvas = images.new_full((channels, rows * (height + 1) + 1, columns * (width + 1) + 1), 1.0)
    for k, image in enumerate(images):
        top, left = 1 + (k // columns) * (height + 1), 1 + (k % columns) * (width + 1)
        canvas[:, top:top + height, left:left + width] = image
    return canvas


def conv_layers(model: nn.Module) -> dict[str, nn.Conv2d]:
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def pick_layer(model: nn.Module, name: str | None, default: str | None, where: str) -> str | None:
    """A module name given by the user (checked), else `default`."""
    if name is None:
        return default
    modules = dict(model.named_modules())
    if name not in modules or not name:
        convs = list(conv_layers(model))
        shown = ", ".join(convs[:12]) + (" ..." if len(convs) > 12 else "")
        raise ConfigError(f"unknown layer '{name}' for {where}; conv layers of this model: {shown or '(none)'} "
                          f"(any name from model.named_modules() works)")
    return name


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode (BatchNorm running stats, no dropout) for a visual's pass; the mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def capture(model: nn.Module, layer: str, x: torch.Tensor, side: str = "output") -> torch.Tensor:
    """Run `x` through the model (eval mode, no grad) and return what `layer` outputs (or takes as input)."""
    seen: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs, output) -> None:
        seen.append((output if side == "output" else inputs[0]).detach())

    handle = dict(model.named_modules())[layer].register_forward_hook(keep)
    try:
        with eval_mode(model), torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen[0]
