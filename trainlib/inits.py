"""Weight-init registry (seed chapter 2.2): each entry initializes a model in place.

An entry builds a `LayerInit`: what to do with the weights of conv layers and of linear
layers (None: keep PyTorch's default for that layer type — e.g. `eye` only fits 2-D
linear weights, so conv layers keep theirs; `dirac` only fits conv weights, so linear
layers keep theirs). Every init but `default` also sets normalization layers (BatchNorm,
GroupNorm, LayerNorm, ...) to weight 1 / bias 0 and zeroes conv/linear biases; the
family-wide `bias` parameter sets another constant for those biases.
Each entry's defaults are torch.nn.init's (xavier and orthogonal gain 1, kaiming's
leaky_relu, uniform U(0, 1), normal N(0, 1)): `init: xavier_normal` is the tutorial's
`nn.init.xavier_normal_(m.weight.data)`. Only `constant`'s value and `sparse`'s sparsity,
which nn.init requires, have defaults of ours.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Literal

import torch
from torch import nn

from trainlib import entry_checks
from trainlib.signatures import INITS
from trainlib.validation import NonNegativeFloat, Probability

Nonlinearity = Literal["linear", "relu", "leaky_relu", "tanh", "sigmoid", "selu"]
FanMode = Literal["fan_in", "fan_out"]
WeightFn = Callable[[torch.Tensor], object]

CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm,
        nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)


def _shared(*, bias: float | None = None) -> None:
    """bias: constant for conv/linear biases; null: the init's own rule (0, `default` keeps PyTorch's)."""


INITS.share(_shared)


def list_inits() -> list[str]:
    return INITS.names()


@dataclass(frozen=True)
class LayerInit:
    conv: WeightFn | None = None  # None: keep PyTorch's default for this layer type
    linear: WeightFn | None = None
    bias: float | None = 0.0  # None: keep the layer's bias as constructed
    norm: bool = True  # set normalization layers to weight 1, bias 0

    def apply(self, model: nn.Module) -> None:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, CONV):
                    self._layer(m, self.conv)
                elif isinstance(m, nn.Linear):
                    self._layer(m, self.linear)
                elif isinstance(m, NORM) and self.norm and getattr(m, "weight", None) is not None:
                    m.weight.fill_(1.0)
                    m.bias.zero_()

    def _layer(self, m: nn.Module, weight_fn: WeightFn | None) -> None:
        if weight_fn is not None:
            weight_fn(m.weight)
        if m.bias is not None and self.bias is not None:
            m.bias.fill_(self.bias)


def apply_init(spec: dict, model: nn.Module) -> None:
    layer_init = INITS.build(spec)
    bias = INITS.shared_values(spec)["bias"]
    if bias is not None:
        layer_init = replace(layer_init, bias=bias)
    layer_init.apply(model)


def _gain(gain: float, nonlinearity: Nonlinearity | None) -> float:
    return gain if nonlinearity is None else nn.init.calculate_gain(nonlinearity)


def _everywhere(fn: WeightFn) -> LayerInit:
    return LayerInit(conv=fn, linear=fn)


@INITS.register("default")
def default() -> LayerInit:
    """PyTorch's own per-layer defaults (leave the model as constructed)."""
    return LayerInit(bias=None, norm=False)


@INITS.register("initialize_weights")
def initialize_weights() -> LayerInit:
    """The seed's scheme: conv xavier_normal, BN weight 1 / bias 0, linear N(0, 0.01), zero biases."""
    return LayerInit(conv=nn.init.xavier_normal_, linear=lambda w: nn.init.normal_(w, 0.0, 0.01))


@INITS.register("xavier_uniform", check=entry_checks.one_gain)
def xavier_uniform(*, gain: NonNegativeFloat = 1.0, nonlinearity: Nonlinearity | None = None) -> LayerInit:
    """Glorot uniform: U(-b, b), b = gain*sqrt(6/(fan_in+fan_out)); nonlinearity: gain = calculate_gain(it)."""
    g = _gain(gain, nonlinearity)
    return _everywhere(lambda w: nn.init.xavier_uniform_(w, gain=g))


@INITS.register("xavier_normal", check=entry_checks.one_gain)
def xavier_normal(*, gain: NonNegativeFloat = 1.0, nonlinearity: Nonlinearity | None = None) -> LayerInit:
    """Glorot normal: N(0, std^2), std = gain*sqrt(2/(fan_in+fan_out)); nonlinearity: gain = calculate_gain(it)."""
    g = _gain(gain, nonlinearity)
    return _everywhere(lambda w: nn.init.xavier_normal_(w, gain=g))


@INITS.register("kaiming_uniform")
def kaiming_uniform(*, a: float = 0.0, mode: FanMode = "fan_in",
                    nonlinearity: Nonlinearity = "leaky_relu") -> LayerInit:
    """He uniform: U(-b, b), b = gain*sqrt(3/fan), gain = calculate_gain(nonlinearity, a)."""
    return _everywhere(lambda w: nn.init.kaiming_uniform_(w, a=a, mode=mode, nonlinearity=nonlinearity))


@INITS.register("kaiming_normal")
def kaiming_normal(*, a: float = 0.0, mode: FanMode = "fan_in",
                   nonlinearity: Nonlinearity = "leaky_relu") -> LayerInit:
    """He normal: N(0, std^2), std = gain/sqrt(fan), gain = calculate_gain(nonlinearity, a)."""
    return _everywhere(lambda w: nn.init.kaiming_normal_(w, a=a, mode=mode, nonlinearity=nonlinearity))


@INITS.register("uniform")
def uniform(*, low: float = 0.0, high: float = 1.0) -> LayerInit:
    """Weights from U(low, high) (nn.init.uniform_'s a, b)."""
    return _everywhere(lambda w: nn.init.uniform_(w, low, high))


@INITS.register("normal")
def normal(*, mean: float = 0.0, std: NonNegativeFloat = 1.0) -> LayerInit:
    """Weights from N(mean, std^2)."""
    return _everywhere(lambda w: nn.init.normal_(w, mean, std))


@INITS.register("trunc_normal")
def trunc_normal(*, mean: float = 0.0, std: NonNegativeFloat = 1.0, a: float = -2.0, b: float = 2.0) -> LayerInit:
    """Weights from N(mean, std^2) truncated to [a, b] (absolute bounds, as nn.init.trunc_normal_)."""
    return _everywhere(lambda w: nn.init.trunc_normal_(w, mean, std, a, b))


@INITS.register("constant")
def constant(*, value: float = 0.01) -> LayerInit:
    """Every weight = value (a symmetry-breaking test case: units in a layer stay identical; nn.init.constant_
    has no default value, 0.01 is ours)."""
    return _everywhere(lambda w: nn.init.constant_(w, value))


@INITS.register("eye")
def eye() -> LayerInit:
    """Identity for 2-D linear weights (top-left block if not square); conv layers keep PyTorch's default."""
    return LayerInit(linear=nn.init.eye_)


@INITS.register("dirac")
def dirac() -> LayerInit:
    """Dirac delta for conv weights (identity mapping of as many channels as fit); linear layers keep the default."""
    return LayerInit(conv=nn.init.dirac_)


@INITS.register("orthogonal", check=entry_checks.one_gain)
def orthogonal(*, gain: NonNegativeFloat = 1.0, nonlinearity: Nonlinearity | None = None) -> LayerInit:
    """(Semi-)orthogonal weights (conv kernels flattened to rows), scaled by gain (or calculate_gain(nonlinearity))."""
    g = _gain(gain, nonlinearity)
    return _everywhere(lambda w: nn.init.orthogonal_(w, gain=g))


@INITS.register("sparse")
def sparse(*, sparsity: Probability = 0.1, std: NonNegativeFloat = 0.01) -> LayerInit:
    """Sparse N(0, std^2): a `sparsity` fraction of each column zeroed (conv kernels flattened to 2-D;
    nn.init.sparse_ has no default sparsity, 0.1 is ours)."""
    return _everywhere(lambda w: nn.init.sparse_(w.view(w.shape[0], -1), sparsity, std))
