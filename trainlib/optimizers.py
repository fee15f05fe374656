"""Optimizer registry (seed chapter 3.3): each entry builds an optimizer over parameters."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from trainlib.registry import NonNegativeFloat, PositiveFloat, Registry

OPTIMIZERS = Registry("optimizer")


def list_optimizers() -> list[str]:
    return OPTIMIZERS.names()


def build_optimizer(spec: dict, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    return OPTIMIZERS.build(spec, params)


Params = Iterable[torch.nn.Parameter]


@OPTIMIZERS.register("sgd")
def sgd(params: Params, *, lr: PositiveFloat = 0.01, momentum: NonNegativeFloat = 0.9, dampening: float = 0.0,
        nesterov: bool = False, weight_decay: NonNegativeFloat = 0.0) -> torch.optim.Optimizer:
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, dampening=dampening,
                           nesterov=nesterov, weight_decay=weight_decay)


@OPTIMIZERS.register("adam")
def adam(params: Params, *, lr: PositiveFloat = 0.001, beta1: float = 0.9, beta2: float = 0.999,
         eps: float = 1e-8, weight_decay: NonNegativeFloat = 0.0, amsgrad: bool = False) -> torch.optim.Optimizer:
    """Adam (optionally AMSGrad)."""
    return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps,
                            weight_decay=weight_decay, amsgrad=amsgrad)


@OPTIMIZERS.register("adamw")
def adamw(params: Params, *, lr: PositiveFloat = 0.001, beta1: float = 0.9, beta2: float = 0.999,
          eps: float = 1e-8, weight_decay: NonNegativeFloat = 0.01, amsgrad: bool = False) -> torch.optim.Optimizer:
    """AdamW: Adam with decoupled weight decay."""
    return torch.optim.AdamW(params, lr=lr, betas=(beta1, beta2), eps=eps,
                             weight_decay=weight_decay, amsgrad=amsgrad)


@OPTIMIZERS.register("rmsprop")
def rmsprop(params: Params, *, lr: PositiveFloat = 0.01, alpha: float = 0.99, eps: float = 1e-8,
            weight_decay: NonNegativeFloat = 0.0, momentum: NonNegativeFloat = 0.0, centered: bool = False) -> torch.optim.Optimizer:
    """RMSprop."""
    return torch.optim.RMSprop(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                               momentum=momentum, centered=centered)
