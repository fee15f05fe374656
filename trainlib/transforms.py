"""Transform registry (seed chapter 1.6): image transforms by name.

Pipelines are config lists such as ``[{random_crop: {size: 32, padding: 4}}, normalize]``.
Per-sample transforms (`transforms.train`, `transforms.eval`) take and return a CHW image
tensor, uint8 until `to_tensor`, `normalize` (or `linear_transformation`) turns it into float;
whatever the pipeline ends with is made a float tensor. `to_pil_image` switches to a PIL
image; `to_tensor` does what torchvision's ToTensor does: PIL image (or uint8 tensor) ->
float CHW tensor in [0, 1] (`normalize` after it only normalizes).
`five_crop` / `ten_crop` return the crops stacked (ncrops, C, H, W); the model then sees
each crop and its logits are averaged (trainlib.engine).
Batch transforms (`transforms.batch`: mixup, cutmix) mix whole training batches and turn
class ids into class probabilities. Some per-sample transforms also have a device version
(`device=` on their entry, see trainlib.device_transforms): the same transform applied to a
whole in-memory batch on the training device, which `loader.mode=memory` runs instead. `random_choice`, `random_apply` and `random_order`
take a nested pipeline (`transforms: [...]`) of the same level as their own list.
`TransformContext` supplies what transforms need from the data.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Literal

import torch

from trainlib import device_transforms as device
from trainlib import entry_checks
from trainlib.errors import ConfigError
from trainlib.pipelines import BATCH
from trainlib.signatures import TRANSFORMS
from trainlib.validation import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability


Interpolation = Literal["nearest", "bilinear", "bicubic"]
PadMode = Literal["constant", "edge", "reflect", "symmetric"]


def v2() -> ModuleType:
    """torchvision's transforms, imported on first use: importing torchvision costs ~1.5 s (its
    models import torch._dynamo), which a run whose pipelines run on the device never needs."""
    from torchvision.transforms import v2 as transforms_v2

    return transforms_v2


def list_transforms() -> list[str]:
    return TRANSFORMS.names()


@dataclass(frozen=True)
class TransformContext:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_size: int
    num_classes: int = 0
    train_images: torch.Tensor | None = field(default=None, repr=False, compare=False)  # uint8 (N, C, H, W)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_splits(cls, data: Any) -> TransformContext:
        """From trainlib.data's ImageSplits."""
        return cls(data.mean, data.std, data.image_size, data.num_classes, getattr(data.train, "images", None))

    def zca(self, epsilon: float, max_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
        """ZCA whitening (matrix, mean) of the train split in [0, 1] units, computed once per setting."""
        key = ("zca", epsilon, max_samples)
        if key not in self._cache:
            if self.train_images is None:
                raise ConfigError("linear_transformation needs the train split to compute its ZCA matrix")
            self._cache[key] = zca_whitening(self.train_images, epsilon, max_samples)
        return self._cache[key]


def zca_whitening(images: torch.Tensor, epsilon: float, max_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """W = V diag(1/sqrt(l + eps)) V^T over the sample covariance's eigenpairs (l, V), from a seeded subsample.

    The eigenpairs come from the n x n Gram matrix (n = samples <= max_samples), cheap for
    3x32x32 = 3072 dimensions; directions outside the sample's span get 1/sqrt(eps).
    """
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:max_samples]
    x = images[pick].flatten(1).float() / 255
    mean = x.mean(0)
    xc = x - mean
    gram_vals, gram_vecs = torch.linalg.eigh(xc @ xc.T)
    keep = gram_vals > gram_vals.max() * 1e-6
    vecs = xc.T @ gram_vecs[:, keep] / gram_vals[keep].sqrt()  # (D, r) orthonormal principal directions
    variances = gram_vals[keep] / len(x)
    scale = 1 / (variances + epsilon).sqrt() - 1 / math.sqrt(epsilon)
    matrix = (vecs * scale) @ vecs.T + torch.eye(x.shape[1], dtype=x.dtype) / math.sqrt(epsilon)
    return matrix, mean


# --- pipelines ----------------------------------------------------------------------------

def build_steps(specs: list[dict], ctx: TransformContext) -> list[Callable]:
    return [TRANSFORMS.build(spec, ctx) for spec in specs]


def build_pipeline(specs: list[dict], ctx: TransformContext) -> Callable[[Any], torch.Tensor]:
    """Per-sample pipeline: image -> float tensor."""
    return v2().Compose([*build_steps(specs, ctx), to_float])


def build_batch_transform(specs: list[dict] | None, ctx: TransformContext) -> Callable | None:
    """Batch pipeline: (images, class ids) -> (images, class probabilities); None when empty."""
    return v2().Compose(build_steps(specs, ctx)) if specs else None


def to_float(img: Any) -> torch.Tensor:
    """Make the pipeline's output a plain float tensor whatever it ended with (uint8, PIL, float;
    a single image or a batch)."""
    if not isinstance(img, torch.Tensor):
        img = v2().functional.pil_to_tensor(img)
    if type(img) is not torch.Tensor:  # a tv_tensors subclass (as_subclass costs a dispatch, every batch)
        img = img.as_subclass(torch.Tensor)
    return img.float().div_(255) if img.dtype == torch.uint8 else img


# --- device versions (loader.mode=memory) -------------------------------------------------

def with_device_version() -> list[str]:
    return [e.name for e in TRANSFORMS.entries() if "device" in e.meta]


def has_device_version(spec: dict) -> bool:
    """A spec has one when its entry has a device version that takes every parameter it sets."""
    builder = TRANSFORMS.get(spec["name"]).meta.get("device") if spec["name"] in TRANSFORMS else None
    return builder is not None and set(spec) - {"name"} <= set(inspect.signature(builder).parameters)


def without_device_version(specs: list[dict]) -> list[str]:
    return [spec["name"] for spec in specs if not has_device_version(spec)]


def require_device_versions(specs: list[dict]) -> None:
    missing = without_device_version(specs)
    if missing:
        raise ConfigError(f"transform '{missing[0]}' (with these parameters) has no device version for "
                          f"loader.mode=memory; those with one: {', '.join(with_device_version())}")


def build_device_pipeline(specs: list[dict], ctx: device.DeviceContext) -> device.DeviceOp:
    """Compose the device versions; the output is float (scaled to [0, 1] when nothing normalized it)."""
    require_device_versions(specs)
    ops = [build_device_op(s, ctx) for s in fold_to_tensor(specs)]

    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for op in ops:
            x = op(x, generator)
        return to_float(x)
    return apply


def build_device_op(spec: dict, ctx: device.DeviceContext) -> device.DeviceOp:
    """The device version of one spec (has_device_version(spec) must hold)."""
    return TRANSFORMS.get(spec["name"]).meta["device"](ctx, **{k: v for k, v in spec.items() if k != "name"})


def fold_to_tensor(specs: list[dict]) -> list[dict]:
    """Drop a `to_tensor` right before `normalize`: normalize's device multiply-add on uint8 scales by 1/255 itself."""
    return [s for s, after in zip(specs, [*specs[1:], None])
            if not (s["name"] == "to_tensor" and after is not None and after["name"] == "normalize")]


# --- crops, flips, geometry ---------------------------------------------------------------

@TRANSFORMS.register("random_crop", device=device.random_crop)
def random_crop(ctx: TransformContext, *, size: NonNegativeInt = 0, padding: NonNegativeInt = 4,
                padding_mode: PadMode = "constant", fill: int = 0) -> Callable:
    """RandomCrop of `size` (0: the image size) after padding each side by `padding` (with `fill` if constant)."""
    return v2().RandomCrop(size or ctx.image_size, padding=padding, padding_mode=padding_mode, fill=fill)


@TRANSFORMS.register("center_crop", device=device.center_crop)
def center_crop(ctx: TransformContext, *, size: NonNegativeInt = 0) -> Callable:
    """CenterCrop of `size` (0: the image size; after pad/resize to a larger size)."""
    return v2().CenterCrop(size or ctx.image_size)


@TRANSFORMS.register("random_resized_crop")
def random_resized_crop(ctx: TransformContext, *, size: NonNegativeInt = 0, scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3),
                        interpolation: Interpolation = "bilinear") -> Callable:
    """RandomResizedCrop: a random area/aspect crop resized to `size` (0: the image size)."""
    return v2().RandomResizedCrop(size or ctx.image_size, scale=scale, ratio=ratio, interpolation=interpolation)


def _stack_crops(crops: tuple) -> torch.Tensor:
    return torch.stack([v2().functional.to_image(c).as_subclass(torch.Tensor) for c in crops])


@TRANSFORMS.register("five_crop")
def five_crop(ctx: TransformContext, *, size: NonNegativeInt = 0) -> Callable:
    """FiveCrop: 4 corners + center of `size` (0: the image size), stacked (5, C, size, size); logits averaged."""
    return v2().Compose([v2().FiveCrop(size or ctx.image_size), _stack_crops])


@TRANSFORMS.register("ten_crop")
def ten_crop(ctx: TransformContext, *, size: NonNegativeInt = 0, vertical_flip: bool = False) -> Callable:
    """TenCrop: five_crop of the image and of its (horizontal, or vertical) flip, stacked (10, C, size, size)."""
    return v2().Compose([v2().TenCrop(size or ctx.image_size, vertical_flip=vertical_flip), _stack_crops])


@TRANSFORMS.register("random_horizontal_flip", device=device.random_horizontal_flip)
def random_horizontal_flip(ctx: TransformContext, *, p: Probability = 0.5) -> Callable:
    """Flip left-right with probability p."""
    return v2().RandomHorizontalFlip(p)


@TRANSFORMS.register("random_vertical_flip", device=device.random_vertical_flip)
def random_vertical_flip(ctx: TransformContext, *, p: Probability = 0.5) -> Callable:
    """Flip upside-down with probability p."""
    return v2().RandomVerticalFlip(p)


@TRANSFORMS.register("random_rotation")
def random_rotation(ctx: TransformContext, *, degrees: float = 15.0, interpolation: Interpolation = "nearest",
                    fill: int = 0) -> Callable:
    """RandomRotation by an angle in [-degrees, degrees] (same size; corners filled with `fill`)."""
    return v2().RandomRotation(degrees, interpolation=interpolation, fill=fill)


@TRANSFORMS.register("random_affine")
def random_affine(ctx: TransformContext, *, degrees: float = 0.0,
                  translate: tuple[float, float] | None = (0.1, 0.1), scale: tuple[float, float] | None = None,
                  shear: float | None = None, interpolation: Interpolation = "nearest", fill: int = 0) -> Callable:
    """RandomAffine: rotation in [-degrees, degrees], translation fractions, scale range, shear degrees."""
    return v2().RandomAffine(degrees, translate=translate, scale=scale, shear=shear,
                           interpolation=interpolation, fill=fill)


@TRANSFORMS.register("resize", device=device.resize)
def resize(ctx: TransformContext, *, size: NonNegativeInt = 0, interpolation: Interpolation = "bilinear",
           antialias: bool = True) -> Callable:
    """Resize to size x size (0: the image size)."""
    return v2().Resize((size or ctx.image_size,) * 2, interpolation=interpolation, antialias=antialias)


@TRANSFORMS.register("pad")
def pad(ctx: TransformContext, *, padding: NonNegativeInt = 4, fill: int = 0,
        padding_mode: PadMode = "constant") -> Callable:
    """Pad each side by `padding` (the image grows: crop it back for fixed-size models such as net)."""
    return v2().Pad(padding, fill=fill, padding_mode=padding_mode)


# --- colour -------------------------------------------------------------------------------

@TRANSFORMS.register("color_jitter", check=entry_checks.hue)
def color_jitter(ctx: TransformContext, *, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4,
                 hue: float = 0.0) -> Callable:
    """ColorJitter: random brightness, contrast, saturation factors in [1-x, 1+x], hue shift in [-hue, hue]."""
    return v2().ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue)


@TRANSFORMS.register("grayscale")
def grayscale(ctx: TransformContext, *, num_output_channels: Literal[1, 3] = 3) -> Callable:
    """Grayscale with 3 (same model input) or 1 output channels."""
    return v2().Grayscale(num_output_channels)


@TRANSFORMS.register("random_grayscale")
def random_grayscale(ctx: TransformContext, *, p: Probability = 0.1) -> Callable:
    """Grayscale (keeping the channel count) with probability p."""
    return v2().RandomGrayscale(p)


@TRANSFORMS.register("normalize", device=device.normalize)
def normalize(ctx: TransformContext, *, mean: list[float] | None = None,
              std: list[float] | None = None) -> Callable:
    """Scale to [0, 1] and normalize per channel (default: the train split's mean/std)."""
    return v2().Compose([
        v2().ToDtype(torch.float32, scale=True),
        v2().Normalize(list(mean or ctx.mean), list(std or ctx.std)),
    ])


@TRANSFORMS.register("linear_transformation")
def linear_transformation(ctx: TransformContext, *, epsilon: PositiveFloat = 0.1,
                          max_samples: PositiveInt = 1000) -> Callable:
    """LinearTransformation: ZCA whitening of the train split (<= max_samples images); float out, not with normalize."""
    matrix, mean = ctx.zca(epsilon, max_samples)
    return v2().Compose([v2().ToDtype(torch.float32, scale=True), v2().LinearTransformation(matrix, mean)])


# --- type conversions, named functions ----------------------------------------------------

@TRANSFORMS.register("to_pil_image")
def to_pil_image(ctx: TransformContext) -> Callable:
    """ToPILImage: uint8 tensor -> PIL image (for PIL-only steps; back with to_tensor or at the pipeline's end)."""
    return v2().ToPILImage()


@TRANSFORMS.register("to_tensor", device=device.to_tensor)
def to_tensor(ctx: TransformContext) -> Callable:
    """ToTensor: PIL image (or uint8 tensor) -> float CHW tensor in [0, 1], as torchvision's ToTensor."""
    return to_float


def _identity(img: Any) -> Any:
    return img


def _invert(img: Any) -> Any:
    return v2().functional.invert(img)


def _to_rgb(img: torch.Tensor) -> torch.Tensor:
    return img.expand(3, -1, -1) if img.shape[-3] == 1 else img


# Named functions for `lambda` (configs never carry code).
LAMBDAS: dict[str, Callable] = {"identity": _identity, "invert": _invert, "to_rgb": _to_rgb}
LambdaName = Literal[tuple(LAMBDAS)]


@TRANSFORMS.register("lambda")
def lambda_(ctx: TransformContext, *, fn: LambdaName = "identity") -> Callable:
    """Lambda with a named function: identity, invert (255 - x), to_rgb (1 -> 3 channels)."""
    return v2().Lambda(LAMBDAS[fn])


# --- containers of nested pipelines -------------------------------------------------------

@TRANSFORMS.register("random_choice", nested=True, check=entry_checks.choice_weights)
def random_choice(ctx: TransformContext, *, transforms: list[Any] = [],
                  p: list[NonNegativeFloat] | None = None) -> Callable:
    """RandomChoice: apply one transform of the nested list, picked with weights p (default: uniform)."""
    return v2().RandomChoice(build_steps(transforms, ctx), p=p)


@TRANSFORMS.register("random_apply", nested=True, check=entry_checks.nested)
def random_apply(ctx: TransformContext, *, transforms: list[Any] = [], p: Probability = 0.5) -> Callable:
    """RandomApply: apply the whole nested list with probability p."""
    return v2().RandomApply(build_steps(transforms, ctx), p=p)


@TRANSFORMS.register("random_order", nested=True, check=entry_checks.nested)
def random_order(ctx: TransformContext, *, transforms: list[Any] = []) -> Callable:
    """RandomOrder: apply every transform of the nested list in a random order."""
    return v2().RandomOrder(build_steps(transforms, ctx))


# --- automatic augmentation policies ------------------------------------------------------

@TRANSFORMS.register("random_erasing")
def random_erasing(ctx: TransformContext, *, p: Probability = 0.5, scale: tuple[float, float] = (0.02, 0.33),
                   ratio: tuple[float, float] = (0.3, 3.3), value: float = 0.0) -> Callable:
    """RandomErasing: blank a random rectangle (area fraction in scale) with `value`, with probability p."""
    return v2().RandomErasing(p=p, scale=scale, ratio=ratio, value=value)


@TRANSFORMS.register("auto_augment")
def auto_augment(ctx: TransformContext, *, policy: Literal["cifar10", "imagenet", "svhn"] = "cifar10") -> Callable:
    """AutoAugment with a learned policy (cifar10, imagenet or svhn)."""
    return v2().AutoAugment(v2().AutoAugmentPolicy(policy))


@TRANSFORMS.register("rand_augment")
def rand_augment(ctx: TransformContext, *, num_ops: PositiveInt = 2, magnitude: int = 9,
                 num_magnitude_bins: int = 31) -> Callable:
    """RandAugment: num_ops random ops at a fixed magnitude."""
    return v2().RandAugment(num_ops=num_ops, magnitude=magnitude, num_magnitude_bins=num_magnitude_bins)


@TRANSFORMS.register("trivial_augment_wide")
def trivial_augment_wide(ctx: TransformContext, *, num_magnitude_bins: int = 31) -> Callable:
    """TrivialAugmentWide: one random op at a random magnitude."""
    return v2().TrivialAugmentWide(num_magnitude_bins=num_magnitude_bins)


@TRANSFORMS.register("augmix")
def augmix(ctx: TransformContext, *, severity: int = 3, mixture_width: int = 3, chain_depth: int = -1,
           alpha: float = 1.0, all_ops: bool = True) -> Callable:
    """AugMix: a Dirichlet mix of augmentation chains, blended with the original."""
    return v2().AugMix(severity=severity, mixture_width=mixture_width, chain_depth=chain_depth,
                     alpha=alpha, all_ops=all_ops)


# --- batch level --------------------------------------------------------------------------

@TRANSFORMS.register("mixup", level=BATCH)
def mixup(ctx: TransformContext, *, alpha: PositiveFloat = 1.0) -> Callable:
    """MixUp (batch): blend image pairs and their one-hot labels with a Beta(alpha, alpha) weight."""
    return v2().MixUp(alpha=alpha, num_classes=ctx.num_classes)


@TRANSFORMS.register("cutmix", level=BATCH)
def cutmix(ctx: TransformContext, *, alpha: PositiveFloat = 1.0) -> Callable:
    """CutMix (batch): paste a box from another image, labels mixed by the box's area."""
    return v2().CutMix(alpha=alpha, num_classes=ctx.num_classes)
