"""Every transform on a real digits image; nested pipelines; batch mixup/cutmix; ZCA; crops averaged in evaluate()."""
from __future__ import annotations

import re

import pytest
import torchvision
import torch
from PIL import Image

from trainlib.data.datasets import build_dataset
from trainlib.data.loaders import make_loader
from trainlib.engine import evaluate
from trainlib.errors import ConfigError
from trainlib.models import build_model
from trainlib.pipelines import BATCH, parse_pipeline
from trainlib.transforms import (TRANSFORMS, TransformContext, build_batch_transform, build_pipeline, list_transforms,
                                 zca_whitening)

SAMPLE_NAMES = [e.name for e in TRANSFORMS.entries() if e.meta.get("level") != BATCH]
BATCH_NAMES = [e.name for e in TRANSFORMS.entries() if e.meta.get("level") == BATCH]
FLIPS = ["random_horizontal_flip", "random_vertical_flip"]
# the seed tutorial's transforms (its section 1.6; /work/shared/DESIGN.md's catalogue), as torchvision names them
TUTORIAL = ["RandomCrop", "CenterCrop", "RandomResizedCrop", "FiveCrop", "TenCrop", "RandomHorizontalFlip",
            "RandomVerticalFlip", "RandomRotation", "Resize", "Normalize", "ToTensor", "Pad", "ColorJitter",
            "Grayscale", "LinearTransformation", "RandomAffine", "RandomGrayscale", "ToPILImage", "Lambda",
            "RandomChoice", "RandomApply", "RandomOrder"]

# parameters for the test where the defaults alone say little or need a choice
PARAMS = {
    "random_choice": {"transforms": FLIPS},
    "random_apply": {"transforms": FLIPS, "p": 1.0},
    "random_order": {"transforms": ["random_rotation", "random_horizontal_flip"]},
    "linear_transformation": {"max_samples": 200},
}
# documented output on a uint8 (3, 32, 32) image, where it is not a uint8 (3, 32, 32) tensor
OUTPUT = {
    "five_crop": ((5, 3, 32, 32), torch.uint8),
    "ten_crop": ((10, 3, 32, 32), torch.uint8),
    "pad": ((3, 40, 40), torch.uint8),
    "normalize": ((3, 32, 32), torch.float32),
    "to_tensor": ((3, 32, 32), torch.float32),
    "linear_transformation": ((3, 32, 32), torch.float32),
    "to_pil_image": ("PIL", (32, 32)),
}


@pytest.fixture(scope="module")
def digits():
    return build_dataset({"name": "digits"})


@pytest.fixture(scope="module")
def ctx(digits):
    return TransformContext.from_splits(digits)


@pytest.fixture(scope="module")
def image(digits):
    return digits.train.images[7]


def build(name: str, ctx: TransformContext, **params):
    [spec] = parse_pipeline([{name: {**PARAMS.get(name, {}), **params}}], "transforms.train")
    return TRANSFORMS.build(spec, ctx)


def seeded(transform, x, seed: int = 0):
    torch.manual_seed(seed)
    return transform(x)


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_transform_on_a_digits_image_gives_its_documented_output(name, ctx, image):
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
    transform = build(name, ctx)
    out = seeded(transform, image)
    expected = OUTPUT.get(name, ((3, 32, 32), torch.uint8))
    if expected[0] == "PIL":
        assert isinstance(out, Image.Image) and out.size == expected[1]
        return
    assert isinstance(out, torch.Tensor)
    assert tuple(out.shape) == expected[0] and out.dtype == expected[1]
    assert torch.equal(seeded(transform, image), out), "not reproducible under a fixed seed"


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_pipeline_ends_in_a_plain_float_tensor(name, ctx, image):
    specs = parse_pipeline([{name: PARAMS.get(name, {})}], "transforms.train")
    out = seeded(build_pipeline(specs, ctx), image)
    assert type(out) is torch.Tensor and out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("name, params, expected", [
    ("random_horizontal_flip", {"p": 1.0}, lambda x: x.flip(-1)),
    ("random_vertical_flip", {"p": 1.0}, lambda x: x.flip(-2)),
    ("center_crop", {"size": 20}, lambda x: x[:, 6:26, 6:26]),
    ("five_crop", {"size": 20}, lambda x: torch.stack([x[:, :20, :20], x[:, :20, 12:], x[:, 12:, :20],
                                                       x[:, 12:, 12:], x[:, 6:26, 6:26]])),
    ("lambda", {"fn": "invert"}, lambda x: 255 - x),
    ("random_apply", {"transforms": ["random_horizontal_flip"], "p": 0.0}, lambda x: x),
])
def test_transform_does_what_it_says(name, params, expected, ctx, image):
    assert torch.equal(seeded(build(name, ctx, **params), image), expected(image))


def test_grayscale_keeps_three_equal_channels(ctx, image):
    out = build("grayscale", ctx)(image)
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
    assert (out.int() - image.int()).abs().max() <= 1  # digits are grey already: R = G = B


def test_ten_crop_adds_the_crops_of_the_flipped_image(ctx, image):
    crops = build("ten_crop", ctx, size=20)(image)
    assert torch.equal(crops[5:], build("five_crop", ctx, size=20)(image.flip(-1)))


def test_to_tensor_does_what_torchvisions_to_tensor_does(ctx, image):
    from torchvision.transforms import ToTensor

    pil = build("to_pil_image", ctx)(image)
    ours = build("to_tensor", ctx)(pil)
    assert ours.dtype == torch.float32 and 0 <= ours.min() and ours.max() <= 1
    assert torch.equal(ours.as_subclass(torch.Tensor), ToTensor()(pil))
    assert torch.equal(build("to_tensor", ctx)(image).as_subclass(torch.Tensor), image.float() / 255)


def test_normalize_after_to_tensor_normalizes_once(ctx, image):
    specs = parse_pipeline(["to_pil_image", "to_tensor", "normalize"], "transforms.train")
    assert torch.allclose(build_pipeline(specs, ctx)(image), build("normalize", ctx)(image), atol=1e-6)


def test_normalize_uses_the_train_split_statistics(ctx, image):
    out = build("normalize", ctx)(image)
    mean, std = torch.tensor(ctx.mean).view(3, 1, 1), torch.tensor(ctx.std).view(3, 1, 1)
    assert torch.allclose(out, (image.float() / 255 - mean) / std, atol=1e-5)


def test_zca_whitens_the_sample_it_was_computed_on():
    gen = torch.Generator().manual_seed(0)
    images = (torch.rand(64, 3, 4, 4, generator=gen) * torch.linspace(20, 255, 48).view(3, 4, 4)).to(torch.uint8)
    eps = 1e-3
    matrix, mean = zca_whitening(images, eps, max_samples=64)
    x = images.flatten(1).float() / 255
    xc = x - x.mean(0)
    cov = xc.T @ xc / len(x)
    white = (x - mean) @ matrix
    white_cov = white.T @ white / len(x)
    expected = torch.linalg.eigvalsh(cov)
    expected = expected / (expected + eps)
    assert torch.allclose(torch.linalg.eigvalsh(white_cov), expected, atol=2e-3)
    assert torch.allclose(matrix, matrix.T, atol=1e-5)


@pytest.mark.parametrize("name", BATCH_NAMES)
def test_batch_transform_mixes_images_and_labels(name, ctx, digits):
    transform = build_batch_transform(parse_pipeline([name], "transforms.batch", level=BATCH), ctx)
    x = digits.train.images[:16].float() / 255
    y = digits.train.labels[:16]
    mixed, probs = seeded(transform, (x, y))
    assert mixed.shape == x.shape and probs.shape == (16, 10)
    assert torch.allclose(probs.sum(1), torch.ones(16))
    assert (probs.max(1).values < 1).all() or not torch.equal(mixed, x)
    assert torch.equal(seeded(transform, (x, y))[1], probs)


def test_mixup_trains_with_soft_targets(tmp_path):
    from trainlib.run import run

    final = run({"epochs": 1, "batch_size": 128, "device": "cpu", "init": "default",
                 "optimizer": {"name": "adam", "lr": 3e-3},
                 "transforms": {"train": ["normalize"],
                                "batch": [{"random_choice": {"transforms": ["mixup", {"cutmix": {"alpha": 0.5}}]}}]},
                 "tracking": {"mlflow": False, "tensorboard": False}, "output": {"dir": str(tmp_path)}},
                progress=False, echo=lambda line: None)
    assert final["valid/best_acc"] > 0.2


@pytest.mark.parametrize("items, message", [
    ([{"random_apply": {"transforms": [{"nope": {}}]}}],
     r"'transforms.train\[0\].transforms\[0\]': unknown transform 'nope'; valid: augmix"),
    ([{"random_order": {"transforms": [{"random_crop": {"size": "big"}}]}}],
     r"bad value 'big' for 'transforms.train\[0\].transforms\[0\].size' \(int >= 0\)"),
    ([{"random_choice": {"transforms": FLIPS, "p": [1.0]}}], "p has 1 weights for 2 transforms"),
    ([{"random_choice": {}}], "needs at least one transform"),
    (["normalize", "mixup"], r"'transforms.train\[1\]': mixup mixes whole batches; put it in transforms.batch"),
    ([{"random_apply": {"transforms": ["cutmix"]}}], "cutmix mixes whole batches"),
    ([{"random_horizontal_flip": {"p": 2}}], r"bad value 2 for 'transforms.train\[0\].p' \(float in \[0, 1\]\)"),
    ([{"lambda": {"fn": "eval('1')"}}], "bad value .* for 'transforms.train\\[0\\].fn'.*identity"),
    ("normalize", "must be a list of transforms"),
])
def test_bad_pipelines_are_refused_with_their_place(items, message):
    with pytest.raises(ConfigError, match=message):
        parse_pipeline(items, "transforms.train")


def test_batch_list_takes_only_batch_transforms():
    with pytest.raises(ConfigError, match=r"'transforms.batch\[0\]': random_crop is a per-sample transform; "
                                          r"transforms.batch takes cutmix, mixup"):
        parse_pipeline(["random_crop"], "transforms.batch", level=BATCH)


def test_nested_specs_are_resolved_with_defaults():
    [spec] = parse_pipeline([{"random_apply": {"transforms": ["random_vertical_flip"]}}], "transforms.train")
    assert spec == {"name": "random_apply", "p": 0.5, "transforms": [{"name": "random_vertical_flip", "p": 0.5}]}


def test_evaluate_averages_the_logits_of_stacked_crops():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    x = torch.randn(6, 5, 3, 8, 8)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    result = evaluate(model, [(x[:4], y[:4]), (x[4:], y[4:])], torch.nn.CrossEntropyLoss(), torch.device("cpu"))
    with torch.no_grad():
        averaged = model(x.flatten(0, 1)).view(6, 5, 4).mean(1)
    assert torch.equal(result.preds, averaged.argmax(1))
    assert result.loss == pytest.approx(float(torch.nn.functional.cross_entropy(averaged, y)), rel=1e-5)


def test_five_crop_eval_pipeline_feeds_net(ctx, digits):
    specs = parse_pipeline([{"resize": {"size": 36}}, {"five_crop": {"size": 32}}, "normalize"], "transforms.eval")
    loader = make_loader(digits.valid, build_pipeline(specs, ctx), batch_size=16, shuffle=False)
    x, _ = next(iter(loader))
    assert x.shape == (16, 5, 3, 32, 32)
    result = evaluate(build_model({"name": "net"}, 10, 3), loader, torch.nn.CrossEntropyLoss(), torch.device("cpu"))
    assert len(result.preds) == len(digits.valid)


def snake_case(class_name: str) -> str:
    """RandomHorizontalFlip -> random_horizontal_flip, ToPILImage -> to_pil_image."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", class_name).lower()


def test_every_transform_of_the_tutorial_is_listed():
    assert len(set(TUTORIAL)) == 22 and all(hasattr(torchvision.transforms, name) for name in TUTORIAL)
    missing = [name for name in TUTORIAL if snake_case(name) not in list_transforms()]
    assert not missing, f"the tutorial's transforms missing from the registry: {missing}"
    assert snake_case("ToPILImage") == "to_pil_image" and snake_case("RandomHorizontalFlip") == "random_horizontal_flip"
