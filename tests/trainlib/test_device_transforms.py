"""Device versions of transforms do per sample what the per-sample torchvision transforms do."""
from __future__ import annotations

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from trainlib.device_transforms import DeviceContext, random_crop, random_horizontal_flip, random_vertical_flip
from trainlib.errors import ConfigError
from trainlib.transforms import (TRANSFORMS, TransformContext, build_device_pipeline, build_pipeline,
                                 has_device_version, with_device_version)

CPU = torch.device("cpu")
MEAN, STD = (0.2, 0.4, 0.6), (0.5, 0.25, 0.2)


def batch(n: int = 8, size: int = 8) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
def test_random_crop_matches_torchvision_padding_and_crop(mode):
    x = batch()
    ctx = DeviceContext(MEAN, STD, 8, CPU)
    out = random_crop(ctx, size=6, padding=3, padding_mode=mode, fill=7)(x, torch.Generator().manual_seed(1))
    draws = torch.Generator().manual_seed(1)  # the op draws every top, then every left
    top, left = (torch.randint(0, 8 + 6 - 6 + 1, (8,), generator=draws) for _ in range(2))
    padded = TF.pad(x, [3], fill=7, padding_mode=mode)
    expected = torch.stack([padded[i, :, top[i]:top[i] + 6, left[i]:left[i] + 6] for i in range(8)])
    assert torch.equal(out, expected)


def test_crops_differ_per_sample_and_stay_inside_the_padded_image():
    x = torch.full((64, 3, 8, 8), 200, dtype=torch.uint8)
    out = random_crop(DeviceContext(MEAN, STD, 8, CPU), size=8, padding=4)(x, torch.Generator().manual_seed(0))
    zeros_per_sample = (out == 0).sum(dim=(1, 2, 3))
    assert out.shape == x.shape and len(set(zeros_per_sample.tolist())) > 5


@pytest.mark.parametrize("make, dim", [(random_horizontal_flip, 3), (random_vertical_flip, 2)])
def test_flips_flip_exactly_the_drawn_samples(make, dim):
    x = batch(n=32)
    out = make(DeviceContext(MEAN, STD, 8, CPU), p=0.5)(x, torch.Generator().manual_seed(5))
    chosen = torch.rand(32, generator=torch.Generator().manual_seed(5)) < 0.5
    assert 0 < chosen.sum() < 32
    for i in range(32):
        assert torch.equal(out[i], x[i].flip(dim - 1) if chosen[i] else x[i])


def test_normalize_matches_the_per_sample_pipeline():
    x = batch()
    specs = [{"name": "normalize", "mean": None, "std": None}]
    fast = build_device_pipeline(specs, DeviceContext(MEAN, STD, 8, CPU))(x, torch.Generator())
    slow = build_pipeline(specs, TransformContext(MEAN, STD, 8))
    assert fast.dtype == torch.float32
    assert torch.allclose(fast, torch.stack([slow(img) for img in x]), atol=1e-6)


def test_a_pipeline_without_normalize_ends_as_float_in_unit_range():
    out = build_device_pipeline([{"name": "random_horizontal_flip", "p": 1.0}],
                               DeviceContext(MEAN, STD, 8, CPU))(batch(), torch.Generator())
    assert out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1


DETERMINISTIC = {"to_tensor": {}, "normalize": {"mean": None, "std": None}, "random_crop": {"padding": 0},
                 "random_horizontal_flip": {"p": 1.0}, "random_vertical_flip": {"p": 1.0},
                 "resize": {"size": 11}, "center_crop": {"size": 6}}


@pytest.mark.parametrize("name", with_device_version())
def test_every_device_version_matches_its_per_sample_transform_exactly(name):
    """Each device version, drawn deterministically, gives what its torchvision transform gives (bit for bit but
    for normalize's rounding: one multiply-add on the device, a divide then a normalize per sample)."""
    x = batch()
    specs = [{"name": name, **DETERMINISTIC[name]}]
    fast = build_device_pipeline(specs, DeviceContext(MEAN, STD, 8, CPU))(x, torch.Generator())
    slow = torch.stack([build_pipeline(specs, TransformContext(MEAN, STD, 8))(img) for img in x])
    assert torch.equal(fast, slow) if name != "normalize" else torch.allclose(fast, slow, atol=1e-6)


@pytest.mark.parametrize("size", [8, 12])
def test_the_tutorials_resize_and_center_crop_keep_the_fast_path(size):
    """[Resize(size), CenterCrop(8), ToTensor(), normalize]: a device pipeline, equal to the per-sample one."""
    x = batch()
    specs = [{"name": "resize", "size": size}, {"name": "center_crop", "size": 8}, {"name": "to_tensor"},
             {"name": "normalize", "mean": None, "std": None}]
    fast = build_device_pipeline(specs, DeviceContext(MEAN, STD, 8, CPU))(x, torch.Generator())
    slow = build_pipeline(specs, TransformContext(MEAN, STD, 8))
    assert fast.shape == (8, 3, 8, 8)
    assert torch.allclose(fast, torch.stack([slow(img) for img in x]), atol=1e-5)


@pytest.mark.parametrize("names", [["to_tensor"], ["to_tensor", "normalize"], ["random_crop", "to_tensor"],
                                   ["random_crop", "to_tensor", "random_horizontal_flip", "normalize"]])
def test_to_tensor_matches_the_per_sample_pipeline(names):
    """The tutorial's [..., ToTensor(), normalize] on the fast path gives what the per-sample pipeline gives."""
    x = batch()
    specs = [{"name": name, **DETERMINISTIC[name]} for name in names]
    fast = build_device_pipeline(specs, DeviceContext(MEAN, STD, 8, CPU))(x, torch.Generator())
    slow = build_pipeline(specs, TransformContext(MEAN, STD, 8))
    assert fast.dtype == torch.float32
    assert torch.allclose(fast, torch.stack([slow(img) for img in x]), atol=1e-5)
    if "normalize" not in names:
        assert 0 <= fast.min() and fast.max() <= 1


def test_device_version_needs_a_known_name_and_known_params():
    assert has_device_version({"name": "random_crop", "size": 0, "padding": 4, "padding_mode": "constant"})
    assert not has_device_version({"name": "random_crop", "size": 0, "pad_if_needed": True})
    assert not has_device_version({"name": "color_jitter", "brightness": 0.2})
    with pytest.raises(ConfigError, match=f"those with one: {', '.join(with_device_version())}"):
        build_device_pipeline([{"name": "color_jitter"}], DeviceContext(MEAN, STD, 8, CPU))


def test_a_crop_larger_than_the_padded_image_is_a_config_error():
    with pytest.raises(ConfigError, match="larger than the padded image"):
        random_crop(DeviceContext(MEAN, STD, 8, CPU), size=20, padding=2)


def test_device_versions_are_attached_to_their_transforms_entries():
    assert with_device_version() == ["center_crop", "normalize", "random_crop", "random_horizontal_flip",
                                     "random_vertical_flip", "resize", "to_tensor"]
    for name in with_device_version():
        entry = TRANSFORMS.get(name)
        assert entry.meta.get("level", "sample") == "sample"  # mixup/cutmix (batch transforms) are another thing
        assert has_device_version({"name": name, **entry.defaults()})  # takes every parameter its transform takes
