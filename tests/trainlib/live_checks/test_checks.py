"""Each diagnosis check on its own: it fires on the planted fault and stays quiet on healthy input."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainlib.data.datasets import ImageSplits, TensorImages
from trainlib.live_checks import curves, data_checks
from trainlib.live_checks.activations import DeadUnits, watched_layers
from trainlib.live_checks.catalog import CHECKS, DATA, MODEL, OPTIM
from trainlib.live_checks.gradients import UpdateRatios, grad_norms, layer_weights
from trainlib.live_checks.weights import first_nonfinite, symmetric_layers
from trainlib.models import Net


def splits(train_labels: list[int], num_classes: int = 3) -> ImageSplits:
    def split(labels: list[int]) -> TensorImages:
        return TensorImages(torch.zeros(len(labels), 1, 4, 4, dtype=torch.uint8), torch.tensor(labels))

    return ImageSplits(split(train_labels), split([0, 1]), split([2]), [str(i) for i in range(num_classes)],
                       mean=(0.5,), std=(0.2,))


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_every_check_blames_one_part_and_says_what_to_try(name):
    check = CHECKS[name]
    assert check.culprit in (DATA, MODEL, OPTIM) and check.title and check.advice
    assert len({c.rank for c in CHECKS.values()}) == len(CHECKS)


def test_labels_out_of_range_names_split_and_values():
    assert data_checks.labels_out_of_range(splits([0, 1, 2])) is None
    message, evidence = data_checks.labels_out_of_range(splits([0, 3, 7, -1]))
    assert "train" in message and evidence["examples"] == [-1, 3, 7] and evidence["count"] == 3


def test_class_imbalance_only_past_the_ratio():
    names = ["a", "b", "c"]
    assert data_checks.class_imbalance(torch.tensor([0] * 40 + [1] * 10 + [2] * 10), names, 5.0) is None
    message, evidence = data_checks.class_imbalance(torch.tensor([0] * 60 + [1] * 10 + [2] * 5), names, 5.0)
    assert "'a' has 60" in message and "'c' 5" in message and evidence["counts"] == {"a": 60, "b": 10, "c": 5}
    assert "no samples" in data_checks.class_imbalance(torch.tensor([0, 0, 1]), names, 5.0)[0]


def test_inputs_normalized_or_not():
    torch.manual_seed(0)
    normalized = torch.randn(32, 3, 8, 8)
    assert data_checks.inputs_not_normalized(normalized) is None
    assert data_checks.inputs_not_normalized(torch.rand(32, 3, 8, 8)) is None  # [0, 1] is close enough
    message, evidence = data_checks.inputs_not_normalized(torch.rand(32, 3, 8, 8) * 255)
    assert "not normalized" in message and evidence["max"] > 200
    assert data_checks.inputs_not_normalized(torch.randn(4, 5, 3, 8, 8)) is None  # five_crop batches


def test_divergence_needs_a_real_rise():
    assert curves.diverging(9000.0, 2.3, 2.3, 1.5) is not None
    assert curves.diverging(2.5, 2.3, 2.3, 1.5) is None  # a noisy early batch
    assert curves.diverging(0.08, 0.05, 2.3, 1.5) is None  # tiny loss doubling late in training
    assert curves.diverging(1.9, 0.4, 2.3, 1.5) is not None
    assert curves.diverging(math.nan, 0.4, 2.3, 1.5) is None  # NaN is the nan check's job


def test_not_decreasing_waits_for_patience():
    flat = [2.30, 2.31, 2.30, 2.29]
    assert curves.not_decreasing(flat[:3], 3, 0.1) is None
    assert "not decreasing" in curves.not_decreasing(flat, 3, 0.1)[0]
    assert curves.not_decreasing([2.30, 2.30, 1.86, 1.01], 3, 0.1) is None  # the seed Net's slow start


def test_overfitting_needs_a_large_and_growing_gap():
    train = [0.5, 0.8, 0.95, 1.0, 1.0]
    assert "overfitting" in curves.overfitting(train, [0.45, 0.6, 0.62, 0.63, 0.62], 0.15, 3)[0]
    assert curves.overfitting(train, [0.5, 0.78, 0.93, 0.98, 0.99], 0.15, 3) is None
    assert curves.overfitting(train[:3], [0.1, 0.1, 0.1], 0.15, 3) is None  # too early to judge


def test_symmetric_layers_and_first_nonfinite():
    net = Net(10)
    assert symmetric_layers(layer_weights(net)) == []
    nn.init.constant_(net.fc1.weight, 0.0)
    assert symmetric_layers(layer_weights(net)) == ["fc1.weight"]
    assert first_nonfinite(net) is None
    with torch.no_grad():
        net.fc2.weight[0, 0] = math.nan
        net.fc3.weight[0, 0] = math.inf
    assert first_nonfinite(net) == "fc2.weight (weights)"


def test_grad_norms_and_update_ratios():
    torch.manual_seed(0)
    net = Net(10)
    weights = layer_weights(net)
    assert set(weights) == {"conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"}
    net(torch.randn(4, 3, 32, 32)).sum().backward()
    norms = grad_norms(weights)
    assert set(norms) == set(weights) and all(v > 0 for v in norms.values())
    ratios = UpdateRatios(weights)
    assert ratios.take() == {}
    ratios.snapshot()
    with torch.no_grad():
        net.fc1.weight.mul_(1.5)
    got = ratios.take()
    assert got["fc1.weight"] == pytest.approx(0.5, rel=1e-5) and got["conv1.weight"] == 0.0
    ratios.snapshot()  # the second snapshot reuses the first one's buffers: it is of the weights now
    with torch.no_grad():
        net.conv1.weight.mul_(0.5)
    got = ratios.take()
    assert got["fc1.weight"] == 0.0 and got["conv1.weight"] == pytest.approx(0.5, rel=1e-5) and not ratios.pending


def test_dead_units_on_functional_relu_and_relu_modules():
    net = Net(10)
    assert list(watched_layers(net)) == ["conv1", "conv2", "fc1", "fc2"]  # F.relu: the layers feeding it
    dead = DeadUnits(net)
    net(torch.randn(8, 3, 32, 32))
    assert dead.take() == {}  # not armed: nothing recorded
    with torch.no_grad():
        net.fc1.bias.fill_(-1e3)
    dead.armed = True
    net(torch.randn(8, 3, 32, 32))
    fractions = dead.take()
    assert fractions["fc1"] == 1.0 and fractions["conv1"] < 0.5 and not dead.armed
    dead.close()
    seq = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    assert list(watched_layers(seq)) == ["1"]
