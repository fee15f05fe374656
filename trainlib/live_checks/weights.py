"""Checks on the weights themselves: NaN/Inf, and units made identical by a constant init."""
from __future__ import annotations

import torch
from torch import nn


def first_nonfinite(model: nn.Module) -> str | None:
    """The first parameter (in definition order) whose weights, else whose gradient, is NaN/Inf."""
    params = list(model.named_parameters())
    if all_finite([p.detach() for _, p in params] + [p.grad for _, p in params if p.grad is not None]):
        return None
    for attr in ("data", "grad"):
        for name, p in params:
            value = getattr(p, attr)
            if value is not None and not bool(torch.isfinite(value).all()):
                return f"{name} ({'weights' if attr == 'data' else 'gradient'})"
    return None


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """One `_foreach_norm` call (a NaN/Inf makes its tensor's max-abs NaN/Inf), not a check per tensor."""
    if not tensors:
        return True
    return bool(torch.isfinite(torch.stack(torch._foreach_norm(tensors, ord=float("inf")))).all())


def symmetric_layers(weights: dict[str, nn.Parameter]) -> list[str]:
    """Layers whose units (rows of the weight) are all identical: they get identical gradients
    and stay identical, so the layer acts as a single unit."""
    found = []
    for name, w in weights.items():
        rows = w.detach().reshape(w.shape[0], -1)
        if rows.shape[0] > 1 and bool(torch.equal(rows, rows[:1].expand_as(rows))):
            found.append(name)
    return found
