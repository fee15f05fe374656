"""Per-layer gradient norms and update/weight ratios."""
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
    norms = torch.stack([g.detach().float().norm() for _, g in named]).tolist()
    return {name: norm for (name, _), norm in zip(named, norms)}


class UpdateRatios:
    """|w after - w before| / |w before| for one optimizer step: snapshot now, compare at the next batch."""

    def __init__(self, weights: dict[str, nn.Parameter]):
        self.weights = weights
        self.before: dict[str, torch.Tensor] | None = None

    def snapshot(self) -> None:
        self.before = {name: p.detach().clone() for name, p in self.weights.items()}

    def take(self) -> dict[str, float]:
        """Ratios since the snapshot (empty if none); layers with zero weights are skipped."""
        if self.before is None:
            return {}
        names = list(self.before)
        before = torch.stack([self.before[n].float().norm() for n in names])
        delta = torch.stack([(self.weights[n].detach() - self.before[n]).float().norm() for n in names])
        self.before = None
        ratios = (delta / before).tolist()
        return {n: r for n, r, b in zip(names, ratios, before.tolist()) if b > 0}
