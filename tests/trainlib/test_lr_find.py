"""The LR range test's schedule, early stop and suggestion rules."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from trainlib.lr_find import RangeTest, range_test


def curve(losses: list[float]) -> RangeTest:
    lrs = list(np.logspace(-5, 1, len(losses)))
    return RangeTest(lrs, losses, losses, stopped_early=False)


def test_suggestion_is_a_tenth_of_the_minimum_and_steepest_comes_before_it():
    losses = [2.3] * 10 + [2.2, 1.9, 1.4, 1.0, 0.8, 0.7, 0.9, 1.8, 4.0]
    test = curve(losses)
    assert test.min_loss_lr == test.lrs[15]
    assert test.suggested_lr == pytest.approx(test.lrs[15] / 10)
    assert test.lrs[10] <= test.steepest_lr < test.lrs[15]


def test_no_suggestion_when_the_loss_never_falls():
    test = curve([2.30, 2.31, 2.29, 2.30, 2.30, 2.31, 2.30, 2.33, 3.5])
    assert test.drop < 0.05 and test.suggested_lr is None and test.steepest_lr is None


def test_range_test_grows_lr_exponentially_and_stops_on_divergence():
    torch.manual_seed(0)
    x = torch.randn(64, 5)
    y = (x[:, 0] > 0).long()
    loader = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]  # cycled past its 4 batches
    model = nn.Linear(5, 2)
    opt = torch.optim.SGD([{"params": model.weight}, {"params": model.bias, "lr": 2.0}], lr=1.0)
    test = range_test(model, loader, nn.CrossEntropyLoss(), opt, torch.device("cpu"), 1e-3, 1e6, 60)
    ratios = np.diff(np.log(test.lrs))
    assert test.lrs[0] == pytest.approx(1e-3) and np.allclose(ratios, ratios[0])
    assert test.stopped_early and len(test.lrs) < 60
    assert opt.param_groups[1]["lr"] == pytest.approx(2 * opt.param_groups[0]["lr"])  # group ratios kept
    assert all(math.isfinite(v) for v in test.smoothed)


def _toy(batch_shape=(16, 5)):
    torch.manual_seed(0)
    x = torch.randn(64, *batch_shape[1:])
    y = (x.flatten(1)[:, 0] > 0).long()
    return [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]


def test_range_test_steps_lbfgs_through_its_closure():
    model = nn.Linear(5, 2)
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=3)
    test = range_test(model, _toy(), nn.CrossEntropyLoss(), opt, torch.device("cpu"), 1e-3, 1.0, 8)
    assert len(test.lrs) == 8 and all(math.isfinite(v) for v in test.losses)
    assert opt.state[opt._params[0]]["func_evals"] > 8  # LBFGS re-evaluated the loss inside its steps


def _image_model(seen: list) -> nn.Module:
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    model.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    return model


def test_range_test_mixes_batches_like_training():
    from trainlib.transforms import TransformContext, build_batch_transform

    seen: list[torch.Tensor] = []
    mixup = build_batch_transform([{"name": "mixup", "alpha": 1.0}], TransformContext((0.5,) * 3, (0.5,) * 3, 4, 2))
    loader = [(x.view(16, 3, 4, 4), y) for x, y in _toy((16, 48))]
    model = _image_model(seen)
    test = range_test(model, loader, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1),
                      torch.device("cpu"), 1e-3, 1e-1, 4, batch_transform=mixup)
    assert len(test.lrs) == 4
    assert not torch.equal(seen[0], loader[0][0])  # the model saw mixed images, not the loader's


def test_range_test_runs_five_crop_batches_as_images():
    seen: list[torch.Tensor] = []
    loader = [(x.view(16, 1, 3, 4, 4).expand(16, 5, 3, 4, 4), y) for x, y in _toy((16, 48))]
    model = _image_model(seen)
    test = range_test(model, loader, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1),
                      torch.device("cpu"), 1e-3, 1e-1, 4)
    assert len(test.lrs) == 4 and seen[0].shape == (16 * 5, 3, 4, 4)  # crop logits averaged per sample


def test_the_range_test_on_a_runs_parts_steps_with_its_options():
    """`launch lr-find` and the doctor's lr probe: the run's precision, channels_last, accumulation and clipping."""
    from trainlib.config import validate
    from trainlib.lr_find import parts_range_test
    from trainlib.run import build_parts

    cfg = validate({"data": {"name": "fake", "num_samples": 64, "num_classes": 4, "image_size": 32}, "batch_size": 8,
                    "device": "cpu", "visuals": {"enabled": False}, "diagnose": {"enabled": False},
                    "train": {"precision": "bf16", "channels_last": True, "accumulate": 2},
                    "optimizer": {"name": "sgd", "lr": 0.1, "clip_grad_norm": 1e-3}})
    parts = build_parts(cfg)
    channels_last, dtypes = [], []
    parts.model.register_forward_pre_hook(
        lambda module, args: channels_last.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    parts.model.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))

    test = parts_range_test(parts, 1e-3, 1e-2, 3)

    assert len(test.lrs) == 3 and len(channels_last) == 3 * 2  # two micro-batches per optimizer step
    assert all(channels_last) and set(dtypes) == {torch.bfloat16}
    grads = [p.grad for p in parts.model.parameters() if p.grad is not None]
    assert torch.linalg.vector_norm(torch.stack([g.float().norm() for g in grads])) <= 1e-3 * 1.001  # clipped
