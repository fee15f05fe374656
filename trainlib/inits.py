"""Weight-init registry (seed chapter 2.2): each entry initializes a model in place."""
from __future__ import annotations

from torch import nn

from trainlib.registry import Registry

INITS = Registry("init")


def list_inits() -> list[str]:
    return INITS.names()


def apply_init(spec: dict, model: nn.Module) -> None:
    INITS.build(spec, model)


@INITS.register("default")
def default(model: nn.Module) -> None:
    """PyTorch's own per-layer defaults (leave the model as constructed)."""


@INITS.register("initialize_weights")
def initialize_weights(model: nn.Module) -> None:
    """The seed's scheme: conv xavier_normal, BN weight 1 / bias 0, linear N(0, 0.01), zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_normal_(m.weight.data)
            if m.bias is not None:
                m.bias.data.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.data.fill_(1)
            m.bias.data.zero_()
        elif isinstance(m, nn.Linear):
            m.weight.data.normal_(0, 0.01)
            m.bias.data.zero_()
