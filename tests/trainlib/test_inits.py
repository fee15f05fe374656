"""Every init: finite weights with its documented statistics, per layer type; norm layers and biases."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainlib.config import validate
from trainlib.errors import ConfigError
from trainlib.inits import INITS, apply_init, list_inits
from trainlib.models import build_model

RELU_GAIN = math.sqrt(2.0)


class Probe(nn.Module):
    """Conv + BatchNorm + two linear layers, the big one (256 x 512) for the statistics."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(512, 256)
        self.head = nn.Linear(256, 10)

    def forward(self, x):
        x = self.bn(self.conv(x))
        return self.head(self.fc(nn.functional.adaptive_avg_pool2d(x, 8).flatten(1)))


def initialized(name: str, **params) -> tuple[Probe, Probe]:
    """(untouched, initialized) copies of the same seeded probe, with perturbed BatchNorm."""
    torch.manual_seed(0)
    before = Probe()
    with torch.no_grad():
        before.bn.weight.uniform_(0.5, 1.5)
        before.bn.bias.uniform_(-1, 1)
    after = Probe()
    after.load_state_dict(before.state_dict())
    apply_init({"name": name, **INITS.validate(name, params)}, after)
    return before.requires_grad_(False), after.requires_grad_(False)


def fan_bound(w: torch.Tensor, gain: float, fan: str = "avg", k: float = 3.0) -> float:
    """sqrt(k) * gain / sqrt(fan): k=3 the uniform bound, k=1 the normal std (avg fan = (in+out)/2)."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
    n = {"in": fan_in, "avg": (fan_in + fan_out) / 2}[fan]
    return gain * math.sqrt(k / n)


def check_default(before: Probe, after: Probe) -> bool:
    return all(torch.equal(a, b) for a, b in zip(before.state_dict().values(), after.state_dict().values()))


def check_uniform_bound(w: torch.Tensor, bound: float) -> bool:
    return bool(w.abs().max() <= bound + 1e-6 and w.abs().max() > 0.95 * bound)


def check_std(w: torch.Tensor, std: float, mean: float = 0.0) -> bool:
    return abs(float(w.std()) - std) < 0.05 * std and abs(float(w.mean()) - mean) < 0.05 * std


# name -> (params, check(before, after)) on the big linear layer `fc` unless said otherwise
DOCUMENTED = {
    "default": ({}, check_default),
    "initialize_weights": ({}, lambda b, a: check_std(a.fc.weight, 0.01)),
    "xavier_uniform": ({}, lambda b, a: check_uniform_bound(a.fc.weight, fan_bound(a.fc.weight, 1.0))),
    "xavier_normal": ({"gain": 2.0}, lambda b, a: check_std(a.fc.weight, fan_bound(a.fc.weight, 2.0, k=1.0))),
    "kaiming_uniform": ({}, lambda b, a: check_uniform_bound(a.fc.weight, fan_bound(a.fc.weight, RELU_GAIN, "in"))),
    "kaiming_normal": ({}, lambda b, a: check_std(a.fc.weight, fan_bound(a.fc.weight, RELU_GAIN, "in", k=1.0))),
    "uniform": ({"low": -0.2, "high": 0.1}, lambda b, a: bool(a.fc.weight.min() >= -0.2 and a.fc.weight.max() <= 0.1)
                and abs(float(a.fc.weight.mean()) + 0.05) < 0.005),
    "normal": ({"mean": 0.5, "std": 0.2}, lambda b, a: check_std(a.fc.weight, 0.2, mean=0.5)),
    "trunc_normal": ({"std": 1.0, "a": -1.0, "b": 1.0}, lambda b, a: bool(a.fc.weight.abs().max() <= 1.0)
                     and abs(float(a.fc.weight.std()) - 0.54) < 0.03),  # std of N(0,1) cut at +-1
    "constant": ({"value": 0.3}, lambda b, a: bool((a.fc.weight == 0.3).all() and (a.conv.weight == 0.3).all())),
    "eye": ({}, lambda b, a: torch.equal(a.fc.weight, torch.eye(256, 512))
            and torch.equal(a.conv.weight, b.conv.weight)),
    "dirac": ({}, lambda b, a: torch.allclose(a.conv(x := torch.randn(2, 8, 6, 6)), x)
              and torch.equal(a.fc.weight, b.fc.weight)),
    "orthogonal": ({}, lambda b, a: torch.allclose(a.fc.weight @ a.fc.weight.T, torch.eye(256), atol=1e-4)),
    "sparse": ({"sparsity": 0.25}, lambda b, a: float((a.fc.weight == 0).float().mean()) == pytest.approx(64 / 256)),
}


def test_every_init_is_documented_here():
    assert sorted(DOCUMENTED) == list_inits()


@pytest.mark.parametrize("name", list_inits())
def test_init_has_its_documented_statistics(name):
    params, check = DOCUMENTED[name]
    before, after = initialized(name, **params)
    assert all(torch.isfinite(p).all() for p in after.parameters())
    assert check(before, after)


@pytest.mark.parametrize("name", [n for n in list_inits() if n != "default"])
def test_init_sets_norm_layers_and_zeroes_biases(name):
    _, after = initialized(name, **DOCUMENTED[name][0])
    assert (after.bn.weight == 1).all() and (after.bn.bias == 0).all()
    assert all((m.bias == 0).all() for m in (after.conv, after.fc, after.head))


@pytest.mark.parametrize("name", list_inits())
def test_bias_parameter_sets_every_conv_and_linear_bias(name):
    _, after = initialized(name, bias=0.25, **DOCUMENTED[name][0])
    assert all((m.bias == 0.25).all() for m in (after.conv, after.fc, after.head))


@pytest.mark.parametrize("name", list_inits())
def test_init_leaves_net_finite(name):
    torch.manual_seed(0)
    net = build_model({"name": "net"}, 10, 3)
    apply_init({"name": name, **INITS.validate(name, DOCUMENTED[name][0])}, net)
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_gain_follows_the_nonlinearity():
    _, relu = initialized("xavier_uniform", nonlinearity="relu")
    _, tanh = initialized("xavier_uniform", nonlinearity="tanh")
    ratio = float(relu.fc.weight.abs().max() / tanh.fc.weight.abs().max())
    assert ratio == pytest.approx(nn.init.calculate_gain("relu") / nn.init.calculate_gain("tanh"), rel=0.02)


@pytest.mark.parametrize("spec, message", [
    ({"name": "kaiming_normal", "mode": "fan_both"}, "bad value 'fan_both' for 'init.mode'"),
    ({"name": "xavier_normal", "gain": "big"}, r"bad value 'big' for 'init.gain' \(float >= 0\)"),
    ({"name": "kaiming_normal", "std": 0.1},
     "unknown parameter 'init.std' for init 'kaiming_normal'; valid: a, mode, nonlinearity, bias"),
    ({"name": "glorot"}, "unknown init 'glorot'; valid: constant, default, dirac"),
])
def test_bad_init_specs_are_named(spec, message):
    with pytest.raises(ConfigError, match=message):
        validate({"init": spec})


def test_sparsity_must_be_a_fraction():
    with pytest.raises(ConfigError, match=r"bad value 1.5 for 'init.sparsity' \(float in \[0, 1\]\)"):
        validate({"init": {"name": "sparse", "sparsity": 1.5}})


# nn.init called with its default arguments (constant and sparse: nn.init has no default for value /
# sparsity, so they get ours), applied to the weights each init covers
TORCH_DEFAULTS = {
    "xavier_uniform": (nn.init.xavier_uniform_, (nn.Conv2d, nn.Linear)),
    "xavier_normal": (nn.init.xavier_normal_, (nn.Conv2d, nn.Linear)),
    "kaiming_uniform": (nn.init.kaiming_uniform_, (nn.Conv2d, nn.Linear)),
    "kaiming_normal": (nn.init.kaiming_normal_, (nn.Conv2d, nn.Linear)),
    "uniform": (nn.init.uniform_, (nn.Conv2d, nn.Linear)),
    "normal": (nn.init.normal_, (nn.Conv2d, nn.Linear)),
    "trunc_normal": (nn.init.trunc_normal_, (nn.Conv2d, nn.Linear)),
    "constant": (lambda w: nn.init.constant_(w, INITS.get("constant").params["value"].default), (nn.Conv2d, nn.Linear)),
    "orthogonal": (nn.init.orthogonal_, (nn.Conv2d, nn.Linear)),
    "sparse": (lambda w: nn.init.sparse_(w.view(w.shape[0], -1), INITS.get("sparse").params["sparsity"].default),
               (nn.Conv2d, nn.Linear)),
    "eye": (nn.init.eye_, (nn.Linear,)),
    "dirac": (nn.init.dirac_, (nn.Conv2d,)),
}
OWN_SCHEMES = ("default", "initialize_weights")  # not nn.init functions


def test_every_init_is_an_nn_init_function_or_one_of_ours():
    assert sorted([*TORCH_DEFAULTS, *OWN_SCHEMES]) == list_inits()


def weight_stats(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: torch.stack([w.mean(), w.std(), w.min(), w.max()])
            for name, w in model.named_parameters() if name.endswith("weight") and w.dim() > 1}


@pytest.mark.parametrize("name", sorted(TORCH_DEFAULTS))
def test_init_defaults_equal_nn_init_defaults(name):
    """`init: NAME` with no parameters draws what nn.init's function with its default arguments draws."""
    fn, types = TORCH_DEFAULTS[name]
    torch.manual_seed(0)
    ours = Probe()
    apply_init({"name": name, **INITS.validate(name, {})}, ours)
    torch.manual_seed(0)
    reference = Probe()
    with torch.no_grad():
        for m in reference.modules():
            if isinstance(m, types):
                fn(m.weight)
    torch.testing.assert_close(weight_stats(ours), weight_stats(reference))


@pytest.mark.parametrize("name", ["xavier_uniform", "xavier_normal", "orthogonal"])
def test_gain_and_nonlinearity_are_exclusive(name):
    with pytest.raises(ConfigError, match=r"set gain \(2\) or nonlinearity \(tanh: gain = calculate_gain\), not both"):
        validate({"init": {"name": name, "gain": 2.0, "nonlinearity": "tanh"}})
