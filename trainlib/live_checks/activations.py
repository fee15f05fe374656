"""Dead units: the share of a layer's units (channels / features) never active on a training batch.

Forward hooks sit on `nn.ReLU` modules when the model has them. Models that call the
functional `F.relu` (the seed's Net) have none, so the hooks go on the conv/linear layers
feeding it instead (all but the output layer): a unit whose pre-activation is never positive
outputs zero after the ReLU. The hooks are there only while armed for a sampled batch: a
module with a forward hook takes PyTorch's slower call path on every forward, eval included.
`LayerHooks` (armed hooks recording one statistic per layer) also serves step 0's layer scales.
"""
from __future__ import annotations

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
    """Forward hooks on named layers, there only while armed, each recording one statistic of
    the layer's output (`statistic` returns None to record nothing)."""

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

    def take(self) -> dict[str, float]:
        """The statistics recorded while armed (one device sync for all); disarms."""
        self.armed = False
        names = list(self.values)
        values = torch.stack([self.values[n] for n in names]).tolist() if names else []
        self.values = {}
        return dict(zip(names, values))

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
        peaks = output.detach().amax(dim=[0, *range(2, output.dim())])  # dead: largest output over the batch <= 0
        return 1 - (peaks > 0).float().mean()
