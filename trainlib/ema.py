"""`train.ema`: an exponential moving average of the weights (timm's ModelEmaV2 / Polyak averaging).

After every optimizer step, ema = decay * ema + (1 - decay) * weights, for parameters and
floating-point buffers (BatchNorm's running statistics); integer buffers are copied. The
update is one fused `lerp` per dtype group on the device, with no host sync. With EMA on, the
EMA copy is what a run validates, tests, checkpoints as `model` and logs to MLflow; the raw
weights the optimizer trains are checkpointed too, so a resume continues both.

torch.optim.swa_utils.AveragedModel does the same average but reads its step counter on the
host each update (a device sync per step on a GPU); this class keeps the loop sync-free.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        source, target = _tensors(model), _tensors(self.module)
        floats = [i for i, t in enumerate(source) if t.is_floating_point()]
        self._float_pairs = ([target[i] for i in floats], [source[i] for i in floats])
        self._other_pairs = [(target[i], source[i]) for i in range(len(source)) if i not in set(floats)]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(*self._float_pairs, 1.0 - self.decay)
        for target, source in self._other_pairs:
            target.copy_(source)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)


def _tensors(model: nn.Module) -> list[torch.Tensor]:
    return [t.detach() for t in (*model.parameters(), *model.buffers())]
