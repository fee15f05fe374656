"""Optimizer registry (seed chapter 3.3): each entry builds a torch optimizer over parameter groups.

`build_optimizer` turns the model into parameter groups first:
- `no_decay_bias_norm` (a parameter every optimizer takes): biases and normalization-layer
  weights go to a group with weight_decay 0;
- `lr_mults` (from Python, e.g. finetune's larger head LR): ``{name prefix: multiplier}``;
  a parameter takes the multiplier of its longest matching prefix (``"fc"`` matches
  ``fc.weight`` and ``fc.bias``), its group's lr = the optimizer's lr x multiplier.
Every optimizer steps through a closure (see trainlib.engine), which LBFGS needs.
"""
from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from trainlib.errors import ConfigError
from trainlib.inits import NORM
from trainlib.signatures import OPTIMIZERS
from trainlib.validation import LearningRate, NonNegativeFloat, PositiveFloat, PositiveInt

ParamGroups = list[dict[str, Any]]


def _shared(*, no_decay_bias_norm: bool = False, clip_grad_norm: PositiveFloat | None = None,
            clip_grad_value: PositiveFloat | None = None) -> None:
    """no_decay_bias_norm: biases and norm weights get weight_decay 0; clip_grad_norm / clip_grad_value: before each step, clip the total gradient L2 norm / each gradient element to this (null: no clipping)."""


OPTIMIZERS.share(_shared)


def list_optimizers() -> list[str]:
    return OPTIMIZERS.names()


def build_optimizer(spec: dict, model: nn.Module, lr_mults: dict[str, float] | None = None) -> torch.optim.Optimizer:
    no_decay = OPTIMIZERS.shared_values(spec)["no_decay_bias_norm"]
    groups = param_groups(model, spec["lr"], lr_mults or {}, no_decay)
    return OPTIMIZERS.build(spec, groups)


def param_groups(model: nn.Module, lr: float, lr_mults: dict[str, float], no_decay_bias_norm: bool) -> ParamGroups:
    """Trainable parameters grouped by (lr multiplier, decay or not), in model order."""
    no_decay_ids = bias_and_norm_ids(model) if no_decay_bias_norm else set()
    _check_prefixes(model, lr_mults)
    groups: dict[tuple[float, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = (_lr_mult(name, lr_mults), id(param) in no_decay_ids)
        group = groups.setdefault(key, {"params": []})
        group["params"].append(param)
        if key[0] != 1.0:
            group["lr"] = lr * key[0]
        if key[1]:
            group["weight_decay"] = 0.0
    return list(groups.values())


def _lr_mult(name: str, lr_mults: dict[str, float]) -> float:
    matches = [p for p in lr_mults if name == p or name.startswith(p + ".")]
    return lr_mults[max(matches, key=len)] if matches else 1.0


def _check_prefixes(model: nn.Module, lr_mults: dict[str, float]) -> None:
    names = [n for n, _ in model.named_parameters()]
    for prefix in lr_mults:
        if not any(n == prefix or n.startswith(prefix + ".") for n in names):
            raise ConfigError(f"lr multiplier prefix '{prefix}' matches no parameter of the model")


def fused_kernel(params: ParamGroups) -> dict[str, bool]:
    """`fused=True` when every parameter is a floating-point CUDA tensor: one kernel per step for
    SGD/Adam/AdamW, which also lets an fp16 GradScaler step without a host sync. Elsewhere torch
    picks its own implementation (foreach on CUDA)."""
    tensors = [p for group in params for p in group["params"]]
    on_cuda = bool(tensors) and all(p.is_cuda and p.is_floating_point() for p in tensors)
    return {"fused": True} if on_cuda else {}


def bias_and_norm_ids(model: nn.Module) -> set[int]:
    ids = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if name == "bias" or isinstance(module, NORM):
                ids.add(id(param))
    return ids


@OPTIMIZERS.register("sgd")
def sgd(params: ParamGroups, *, lr: LearningRate = 0.05, momentum: NonNegativeFloat = 0.9, dampening: float = 0.0,
        nesterov: bool = False, weight_decay: NonNegativeFloat = 0.0) -> torch.optim.Optimizer:
    """Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, dampening=dampening,
                           nesterov=nesterov, weight_decay=weight_decay, **fused_kernel(params))


@OPTIMIZERS.register("asgd")
def asgd(params: ParamGroups, *, lr: LearningRate = 0.01, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6,
         weight_decay: NonNegativeFloat = 0.0) -> torch.optim.Optimizer:
    """Averaged SGD (averaging starts after t0 steps)."""
    return torch.optim.ASGD(params, lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay)


@OPTIMIZERS.register("rprop")
def rprop(params: ParamGroups, *, lr: LearningRate = 0.01, eta_minus: float = 0.5, eta_plus: float = 1.2,
          step_min: float = 1e-6, step_max: float = 50.0) -> torch.optim.Optimizer:
    """Resilient backprop: per-weight steps grown/shrunk by the gradient's sign (meant for full batches)."""
    return torch.optim.Rprop(params, lr=lr, etas=(eta_minus, eta_plus), step_sizes=(step_min, step_max))


@OPTIMIZERS.register("adagrad")
def adagrad(params: ParamGroups, *, lr: LearningRate = 0.01, lr_decay: float = 0.0,
            weight_decay: NonNegativeFloat = 0.0, initial_accumulator_value: float = 0.0,
            eps: float = 1e-10) -> torch.optim.Optimizer:
    """Adagrad: per-weight lr scaled by the accumulated squared gradients."""
    return torch.optim.Adagrad(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                               initial_accumulator_value=initial_accumulator_value, eps=eps)


@OPTIMIZERS.register("adadelta")
def adadelta(params: ParamGroups, *, lr: LearningRate = 1.0, rho: float = 0.9, eps: float = 1e-6,
             weight_decay: NonNegativeFloat = 0.0) -> torch.optim.Optimizer:
    """Adadelta: Adagrad with running averages of squared gradients and updates."""
    return torch.optim.Adadelta(params, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)


@OPTIMIZERS.register("rmsprop")
def rmsprop(params: ParamGroups, *, lr: LearningRate = 0.01, alpha: float = 0.99, eps: float = 1e-8,
            weight_decay: NonNegativeFloat = 0.0, momentum: NonNegativeFloat = 0.0,
            centered: bool = False) -> torch.optim.Optimizer:
    """RMSprop."""
    return torch.optim.RMSprop(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                               momentum=momentum, centered=centered)


@OPTIMIZERS.register("adam")
def adam(params: ParamGroups, *, lr: LearningRate = 0.001, beta1: float = 0.9, beta2: float = 0.999,
         eps: float = 1e-8, weight_decay: NonNegativeFloat = 0.0, amsgrad: bool = False) -> torch.optim.Optimizer:
    """Adam (optionally AMSGrad)."""
    return torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps,
                            weight_decay=weight_decay, amsgrad=amsgrad, **fused_kernel(params))


@OPTIMIZERS.register("adamw")
def adamw(params: ParamGroups, *, lr: LearningRate = 0.001, beta1: float = 0.9, beta2: float = 0.999,
          eps: float = 1e-8, weight_decay: NonNegativeFloat = 0.01, amsgrad: bool = False) -> torch.optim.Optimizer:
    """AdamW: Adam with decoupled weight decay."""
    return torch.optim.AdamW(params, lr=lr, betas=(beta1, beta2), eps=eps,
                             weight_decay=weight_decay, amsgrad=amsgrad, **fused_kernel(params))


@OPTIMIZERS.register("adamax")
def adamax(params: ParamGroups, *, lr: LearningRate = 0.002, beta1: float = 0.9, beta2: float = 0.999,
           eps: float = 1e-8, weight_decay: NonNegativeFloat = 0.0) -> torch.optim.Optimizer:
    """Adamax: Adam with the infinity norm."""
    return torch.optim.Adamax(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)


@OPTIMIZERS.register("nadam")
def nadam(params: ParamGroups, *, lr: LearningRate = 0.002, beta1: float = 0.9, beta2: float = 0.999,
          eps: float = 1e-8, weight_decay: NonNegativeFloat = 0.0, momentum_decay: float = 0.004,
          decoupled_weight_decay: bool = False) -> torch.optim.Optimizer:
    """NAdam: Adam with Nesterov momentum."""
    return torch.optim.NAdam(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
                             momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay)


@OPTIMIZERS.register("radam")
def radam(params: ParamGroups, *, lr: LearningRate = 0.001, beta1: float = 0.9, beta2: float = 0.999,
          eps: float = 1e-8, weight_decay: NonNegativeFloat = 0.0,
          decoupled_weight_decay: bool = False) -> torch.optim.Optimizer:
    """RAdam: Adam with a rectified (warmup-free) adaptive lr."""
    return torch.optim.RAdam(params, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
                             decoupled_weight_decay=decoupled_weight_decay)


@OPTIMIZERS.register("lbfgs")
def lbfgs(params: ParamGroups, *, lr: LearningRate = 1.0, max_iter: PositiveInt = 20, max_eval: int | None = None,
          tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: PositiveInt = 100,
          line_search_fn: Literal["strong_wolfe"] | None = None) -> torch.optim.Optimizer:
    """L-BFGS: up to max_iter loss re-evaluations per batch through the closure; one parameter group only."""
    if len(params) > 1:
        raise ConfigError("lbfgs takes one parameter group: drop no_decay_bias_norm and lr multipliers")
    return torch.optim.LBFGS(params, lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                             tolerance_change=tolerance_change, history_size=history_size,
                             line_search_fn=line_search_fn)


SPARSE_ONLY = ("SparseAdam only takes sparse gradients (nn.Embedding(sparse=True)); every model "
               "in the models registry has dense gradients: use adam or adamw")


@OPTIMIZERS.register("sparse_adam", refused=SPARSE_ONLY)
def sparse_adam(params: ParamGroups, *, lr: LearningRate = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                eps: float = 1e-8) -> torch.optim.Optimizer:
    """SparseAdam: Adam for sparse gradients (refused here: every model has dense gradients)."""
    return torch.optim.SparseAdam(params, lr=lr, betas=(beta1, beta2), eps=eps)
