"""Dead units: the share of a layer's units (channels / features) never active on a training batch.

Forward hooks sit on `nn.ReLU` modules when the model has them. Models that call the
functional `F.relu` (the seed's Net) have none, so the hooks go on the conv/linear layers
feeding it instead (all but the output layer): a unit whose pre-activation is never positive
outputs zero after the ReLU. The hooks are there only while armed for a sampled batch: a
module with a forward hook takes PyTorch's slower call path on every forward, eval included.
`LayerHooks` (armed hooks recording one statistic per layer) also serves step 0's layer scales.

A sampled forward pays each hook's tensor ops (a few microseconds each, more on a busy CPU):
a hook keeps one reduction of its layer's output, and `take` reads them all back with one
`cat` and one host copy, finishing each layer's number in Python.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def watched_layers(model: nn.Module) -> dict[str, nn.Module]:
    relus = {name: m for name, m in model.named_modules() if isinstance(m, nn.ReLU)}
    if relus:
        return relus
    layers = {name: m for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    output = next(reversed(layers), None)
    return {name: m for name, m in layers.items() if name != output}


class LayerHooks:
    """Forward hooks on named layers, there only while armed, each recording a 1-D tensor of the
    layer's output (`statistic` returns None to record nothing), which `summary` turns into the
    layer's number once read back."""

    def __init__(self, layers: dict[str, nn.Module]):
        self.layers = layers
        self.values: dict[str, torch.Tensor] = {}
        self.handles: list = []

    @property
    def armed(self) -> bool:
        return bool(self.handles)

    @armed.setter
    def armed(self, value: bool) -> None:
        if value and not self.handles:
            self.handles = [m.register_forward_hook(self._hook(name)) for name, m in self.layers.items()]
        elif not value:
            self.close()

    def _hook(self, name: str):
        def record(module: nn.Module, inputs, output) -> None:
            value = self.statistic(name, module, output)
            if value is not None:
                self.values[name] = value
        return record

    def statistic(self, name: str, module: nn.Module, output) -> torch.Tensor | None:
        raise NotImplementedError

    def summary(self, values: list[float]) -> float:
        """A layer's number from its recorded values (default: its one value)."""
        return values[0]

    def take(self) -> dict[str, float]:
        """The statistics recorded while armed (one device sync for all); disarms."""
        self.armed = False
        names, recorded = list(self.values), list(self.values.values())
        flat = torch.cat(recorded).tolist() if names else []
        self.values = {}
        out, start = {}, 0
        for name, values in zip(names, recorded):
            out[name] = self.summary(flat[start:start + len(values)])
            start += len(values)
        return out

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


class DeadUnits(LayerHooks):
    def __init__(self, model: nn.Module):
        super().__init__(watched_layers(model))

    def statistic(self, name: str, module: nn.Module, output: torch.Tensor) -> torch.Tensor | None:
        if not module.training:
            return None
        return output.detach().amax(dim=[0, *range(2, output.dim())])  # each unit's largest output over the batch

    def summary(self, values: list[float]) -> float:
        """The share of units whose largest output is not positive (dead), in float32 as torch
        computed it when this ran on the device: 1 - mean(peaks > 0)."""
        alive = sum(1 for v in values if v > 0)
        return float(np.float32(1) - np.float32(alive) / np.float32(len(values)))
