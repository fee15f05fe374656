"""Shapes checked by doing, before a run opens: one sample through the train and the eval
transform pipelines, then through the model on the CPU (a dry forward takes milliseconds).

A pipeline whose output the model cannot take (`pad` making 40x40 images for `net`, which
takes 32x32; a 28-pixel eval crop), or turns into another number of rows (52x52 images: `net`'s
`reshape(-1, 400)` makes four rows of each) is refused in one line naming the pipeline, the transform
that changed the size last and the sizes, instead of failing mid-run.
"""
from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import nn

from trainlib.errors import ConfigError
from trainlib.device_transforms import DeviceContext
from trainlib.signatures import TRANSFORMS
from trainlib.transforms import TransformContext, build_device_op, has_device_version, to_float

PIPELINES = {"train": "train", "eval": "valid"}  # pipeline -> the split whose first sample it gets


def check_shapes(specs: dict[str, list[dict]], data: Any, model: nn.Module, model_name: str) -> None:
    """Raise ConfigError when a pipeline's output does not go through `model` (on the CPU)."""
    ctx = TransformContext.from_splits(data)
    with _rng_untouched():
        for pipeline, split in PIPELINES.items():
            image = data.split(split)[0][0]
            shapes, x = _through(specs[pipeline], ctx, image, pipeline)
            _forward(model, x, pipeline, shapes, model_name)


def _through(specs: list[dict], ctx: TransformContext, image: torch.Tensor,
             pipeline: str) -> tuple[list[tuple[str, tuple[int, ...]]], torch.Tensor]:
    """The sample after each step: [(step name, shape)], and the final float tensor."""
    shapes = [("the dataset", tuple(image.shape))]
    x = image
    for spec, step in zip(specs, sample_steps(specs, ctx)):
        try:
            x = step(x)
        except (RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise ConfigError(f"transforms.{pipeline}: '{spec['name']}' fails on a {_size(shapes[-1][1])} "
                              f"image from {shapes[-1][0]}: {_first_line(exc)}") from None
        if isinstance(x, torch.Tensor):
            shapes.append((spec["name"], tuple(x.shape)))
    return shapes, to_float(x)


def sample_steps(specs: list[dict], ctx: TransformContext) -> list:
    """Each step as a function of one image: a transform's device version where it has one and the
    image is a tensor (the same transform over a batch of one, and no torchvision import, ~0.3 s, on
    a run whose pipelines all have one), else the transform itself."""
    batch_ctx = DeviceContext(ctx.mean, ctx.std, ctx.image_size, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)

    def step(spec: dict):
        if not has_device_version(spec):
            return TRANSFORMS.build(spec, ctx)
        op = build_device_op(spec, batch_ctx)
        cpu_step = None

        def on_one_image(x: Any) -> Any:
            nonlocal cpu_step
            if isinstance(x, torch.Tensor):
                return op(x.unsqueeze(0), generator)[0]
            cpu_step = cpu_step or TRANSFORMS.build(spec, ctx)  # a PIL image (after to_pil_image)
            return cpu_step(x)
        return on_one_image
    return [step(spec) for spec in specs]


def _forward(model: nn.Module, x: torch.Tensor, pipeline: str, shapes: list, model_name: str) -> None:
    """Two copies of the sample (or of its five_crop / ten_crop crops) through the model: it must take them and
    keep the batch size (Net's `reshape(-1, 400)` turns one 52x52 image into four rows)."""
    batch = x.reshape(-1, *x.shape[-3:]).repeat(2, 1, 1, 1)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(batch.to(next(model.parameters()).device))
    except RuntimeError as exc:
        raise ConfigError(_refusal(pipeline, shapes, batch, model_name, _first_line(exc))) from None
    finally:
        model.train(was_training)
    if isinstance(out, torch.Tensor) and out.shape[:1] != batch.shape[:1]:
        raise ConfigError(_refusal(pipeline, shapes, batch, model_name,
                                   f"a batch of {batch.shape[0]} comes out as {out.shape[0]} rows"))


def _refusal(pipeline: str, shapes: list, batch: torch.Tensor, model_name: str, why: str) -> str:
    changed = [name for (_, before), (name, after) in zip(shapes, shapes[1:]) if before[-3:] != after[-3:]]
    where = f"after '{changed[-1]}'" if changed else "as the dataset gives them"
    return (f"transforms.{pipeline}: {where} the images are {_size(batch.shape[1:])} (dataset: "
            f"{_size(shapes[0][1])}), which model '{model_name}' cannot take ({why}); make the pipeline end "
            f"at the size the model takes")


def _size(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape[-3:])


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


class _rng_untouched:
    """Random transforms in the dry run must not move the run's seeded random streams."""

    def __enter__(self) -> None:
        self.states = (random.getstate(), np.random.get_state(), torch.get_rng_state())

    def __exit__(self, *exc: Any) -> None:
        random.setstate(self.states[0])
        np.random.set_state(self.states[1])
        torch.set_rng_state(self.states[2])
