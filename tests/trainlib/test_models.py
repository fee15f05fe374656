"""The seed's ResNet34 runs forward and backward: the cifar stem at 32x32, the imagenet stem at 224x224."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainlib.models import ResNet34, build_model


@pytest.mark.parametrize("stem, size, final_map", [("cifar", 32, 4),
                                                  pytest.param("imagenet", 224, 7, marks=pytest.mark.slow)])
def test_resnet34_forward_and_backward(stem, size, final_map):
    torch.manual_seed(0)
    model = build_model({"name": "resnet34", "stem": stem}, num_classes=10, in_channels=3)
    assert isinstance(model, ResNet34)
    maps = []
    model.layer4.register_forward_hook(lambda module, inputs, output: maps.append(output.shape))
    x = torch.randn(2, 3, size, size)  # batch 2: BatchNorm trains, and the test stays fast
    logits = model(x)
    # the last stage's map is what the seed's fixed avg_pool2d(x, 7) expects at 224x224
    assert logits.shape == (2, 10) and maps == [torch.Size([2, 512, final_map, final_map])]
    F.cross_entropy(logits, torch.tensor([3, 7])).backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    # the gradient reaches the stem through every residual stage
    for name in ("pre.0.weight", "layer1.0.left.0.weight", "layer4.2.left.0.weight", "fc.weight"):
        assert grads[name].abs().sum() > 0, name
