"""Grad-CAM's default layer: the output of the block holding the last conv, not a layer inside a
residual branch (where the shortcut's contribution is missing)."""
from __future__ import annotations

import pytest
import torch

from trainlib.models import MODELS, build_model
from trainlib.visuals.gradcam import cam_layer
from trainlib.visuals.images import capture, conv_layers


def model_and_sample(name: str):
    torch.manual_seed(0)
    model = build_model({"name": name, **MODELS.validate(name, {})}, 10, 3)
    return model, torch.randn(2, 3, 32, 32)


@pytest.mark.slow
def test_resnet34_reads_the_last_blocks_output_after_the_residual_sum():
    model, x = model_and_sample("resnet34")
    assert list(conv_layers(model))[-1] == "layer4.2.left.3"  # inside the residual branch
    assert cam_layer(model, None, x, "visuals.gradcam.layer") == "layer4"
    block = model.layer4[2]
    inputs = capture(model, "layer4.2", x, side="input")
    expected = torch.relu(block.left.eval()(inputs) + inputs)  # the block's own sum: left path + identity shortcut
    assert torch.allclose(capture(model, "layer4", x), expected, atol=1e-5)


@pytest.mark.parametrize("name, layer", [("net", "conv2"), ("tv:resnet18", "layer4")])
def test_other_models_keep_a_sensible_default(name, layer):
    model, x = model_and_sample(name)
    assert cam_layer(model, None, x, "visuals.gradcam.layer") == layer


def test_a_named_layer_still_wins():
    model, x = model_and_sample("resnet34")
    assert cam_layer(model, "layer3", x, "visuals.gradcam.layer") == "layer3"
