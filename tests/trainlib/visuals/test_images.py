"""Grad-CAM, kernel grids and feature maps: what the pictures show."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from trainlib.models import Net
from trainlib.visuals.feature_maps import MAX_MAPS, feature_map_grid
from trainlib.visuals.gradcam import grad_cam, overlay
from trainlib.visuals.images import capture, for_display, grid
from trainlib.visuals.kernels import kernel_grid, kernel_split_grid


class Blobs(nn.Module):
    """A conv then global average pooling: class 1's evidence is wherever the image is bright."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.fill_(0.1)
            self.conv.bias.zero_()

    def forward(self, x):
        a = self.conv(x).mean((2, 3))
        return torch.stack([-a[:, 0], a[:, 1]], 1)


def test_grad_cam_follows_the_evidence_and_leaves_grads_alone():
    x = torch.zeros(2, 1, 16, 16)
    x[0, :, 4:8, 2:6] = 1.0  # a blob on the left
    x[1, :, 8:12, 10:14] = 1.0  # a blob on the right
    model = Blobs().train()
    cams, preds = grad_cam(model, model.conv, x)
    assert cams.shape == (2, 1, 16, 16) and float(cams.max()) <= 1.0 and float(cams.min()) >= 0.0
    assert preds.tolist() == [1, 1]
    left, right = cams[..., :8].mean((1, 2, 3)), cams[..., 8:].mean((1, 2, 3))
    assert left[0] > 5 * right[0] and right[1] > 5 * left[1]
    assert model.conv.weight.grad is None and model.training  # no .grad written, mode restored
    assert overlay(for_display(x), cams).shape == (2, 3, 16, 16)


def test_grad_cam_is_scaled_min_to_max_per_image():
    """(cam - min) / (max - min), as the tutorial: even where the evidence is everywhere (cam > 0)."""
    x = torch.rand(3, 1, 16, 16) + 0.5
    model = Blobs()
    with torch.no_grad():
        model.conv.bias.fill_(1.0)  # activations > 0 everywhere: the raw map has no zero
    cams, _ = grad_cam(model, model.conv, x)
    assert torch.allclose(cams.amin(dim=(1, 2, 3)), torch.zeros(3)) and torch.allclose(cams.amax(dim=(1, 2, 3)),
                                                                                        torch.ones(3))


def test_kernel_grids_as_the_tutorial_all_in_one_and_per_output_channel():
    net = Net(10)
    assert kernel_grid(net.conv1.weight, 16).shape == (3, 1 + 6, 1 + 6 * 6)  # 6 RGB 5x5 kernels in a row
    assert kernel_grid(net.conv2.weight, 4).shape == (3, 1 + 6, 1 + 8 * 6)  # 4 out x 6 in: 8 RGB tiles (view(-1, 3))
    split = kernel_split_grid(net.conv1.weight, 16)
    assert split.shape == (1, 1 + 6 * 6, 1 + 3 * 6)  # a row per output channel, a gray tile per input channel
    assert kernel_split_grid(net.conv2.weight, 4).shape == (1, 1 + 4 * 6, 1 + 4 * 6)


def test_feature_maps_one_row_per_image():
    net = Net(10)
    maps = capture(net, "conv2", torch.randn(2, 3, 32, 32))
    assert maps.shape == (2, 16, 10, 10)
    picture = feature_map_grid(maps)
    assert picture.shape[1:] == (1 + 2 * 11, 1 + MAX_MAPS * 11)
    assert feature_map_grid(capture(net, "fc1", torch.randn(2, 3, 32, 32))).shape[1] == 1 + 2 * 2


@pytest.mark.parametrize("shape, nrow", [((1, 1, 5, 4), 8), ((1, 3, 4, 4), 8), ((7, 1, 5, 3), 3),
                                         ((16, 3, 4, 4), 8), ((9, 3, 6, 2), 4), ((5, 1, 3, 3), 8)])
def test_grid_is_torchvisions_make_grid_pixel_for_pixel(shape, nrow):
    from torchvision.utils import make_grid

    images = torch.rand(shape)
    assert torch.equal(grid(images, nrow=nrow), make_grid(images, nrow=nrow, padding=1, pad_value=1.0))


def test_a_default_run_path_imports_no_torchvision():
    """torchvision costs ~1.5 s to import (its models import torch._dynamo): the run, its registries
    and its visuals import it only where a CPU transform or a torchvision model is built."""
    code = "import sys, trainlib.run, trainlib.visuals; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
