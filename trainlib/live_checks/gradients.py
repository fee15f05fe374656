"""Per-layer gradient norms and update/weight ratios.

Norms go through `torch._foreach_norm` (what `clip_grad_norm_` uses): one call for all layers
(one kernel on a GPU) instead of a few small ops each, which on a small model is most of the
check's cost.
"""
from __future__ import annotations

import torch
from torch import nn


def layer_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """Trainable weight matrices / kernels (biases and norm scales have no meaningful norm ratio)."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad and p.dim() > 1}


def grad_norms(weights: dict[str, nn.Parameter]) -> dict[str, float]:
    named = [(name, p.grad) for name, p in weights.items() if p.grad is not None]
    if not named:
        return {}
    norms = norms_of([g.detach() for _, g in named])
    return {name: norm for (name, _), norm in zip(named, norms)}


class UpdateRatios:
    """|w after - w before| / |w before| for one optimizer step: snapshot now, compare at the next batch."""

    def __init__(self, weights: dict[str, nn.Parameter]):
        self.weights = weights
        self.before: dict[str, torch.Tensor] | None = None
        self._copies: list[torch.Tensor] | None = None  # the snapshot's buffers, reused

    @property
    def pending(self) -> bool:
        return self.before is not None

    def snapshot(self) -> None:
        """Copy the weights (after the first time, into the same buffers: one op for all)."""
        with torch.no_grad():
            if self._copies is None:
                self._copies = [p.clone() for p in self.weights.values()]
            else:
                torch._foreach_copy_(self._copies, list(self.weights.values()))
        self.before = dict(zip(self.weights, self._copies))

    def take(self) -> dict[str, float]:
        """Ratios since the snapshot (empty if none); layers with zero weights are skipped."""
        if self.before is None:
            return {}
        names, old = list(self.before), list(self.before.values())
        with torch.no_grad():
            delta = torch._foreach_sub([self.weights[n] for n in names], old)
        norms = norms_of(old + list(delta))  # one read back for both
        self.before = None
        return {n: d / b for n, d, b in zip(names, norms[len(names):], norms[:len(names)]) if b > 0}


def norms_of(tensors: list[torch.Tensor]) -> list[float]:
    """The L2 norm of each tensor, in float32 or wider."""
    tensors = [t if t.dtype in (torch.float32, torch.float64) else t.float() for t in tensors]
    return torch.stack(torch._foreach_norm(tensors)).tolist() if tensors else []
