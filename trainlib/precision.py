"""How a run computes on its device: autocast dtype and gradient scaler (`train.precision`),
memory format (`train.channels_last`), backend switches (TF32, cuDNN autotuning) and
`torch.compile` (`train.compile`).

Weights, optimizer state, the loss sums and the metrics stay fp32 whatever the precision;
autocast runs the forward pass and the loss in bf16/fp16 where torch deems it safe.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainlib.compat import torch_module_hook_tables
from trainlib.errors import ConfigError

DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Execution:
    """Where and in which number format the forward pass runs."""

    device: torch.device
    precision: str = "fp32"
    channels_last: bool = False

    @property
    def dtype(self) -> torch.dtype | None:
        return DTYPES[self.precision]

    def autocast(self) -> AbstractContextManager:
        """torch.autocast for bf16/fp16; none for fp32 (entering even a disabled one costs a few
        microseconds, every step)."""
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def place(self, x: torch.Tensor) -> torch.Tensor:
        """An input batch on the device (asynchronous from pinned memory), channels_last if asked."""
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def scaler(self) -> torch.amp.GradScaler:
        """The gradient scaler: active for fp16 only (bf16 has fp32's exponent range)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")


def check_supported(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot run natively (emulated bf16 would be slower than fp32)."""
    if precision == "fp32":
        return
    if not torch.amp.is_autocast_available(device.type):
        raise ConfigError(f"train.precision={precision}: torch has no autocast for device '{device}'; use fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise ConfigError(f"train.precision=bf16: {torch.cuda.get_device_name(device)} has no native bfloat16 "
                          "(it needs compute capability 8.0+); use fp16 or fp32")


def configure_backends(device: torch.device, tf32: bool) -> None:
    """On CUDA: TF32 tensor cores for fp32 matmuls/convolutions (`train.tf32`), and cuDNN
    autotuning (our batches have one image size, so the tuned kernel is reused every step)."""
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True


def to_memory_format(model: nn.Module, channels_last: bool) -> nn.Module:
    return model.to(memory_format=torch.channels_last) if channels_last else model


def compiled(model: nn.Module, mode: str | bool) -> nn.Module:
    """`model` compiled with `torch.compile(mode=mode)` (CompiledUnlessHooked), or `model` when mode is
    false. The wrapper shares `model`'s parameters: checkpoints are written from `model` itself."""
    if not mode:
        return model
    return CompiledUnlessHooked(model, mode=mode)


class CompiledUnlessHooked(nn.Module):
    """`torch.compile(model)`, except for a forward pass while a module of `model` has a forward hook:
    that one runs `model` eagerly. The live checks arm hooks for a sampled batch (step 0, then one in
    `diagnose.every_batches`); dynamo traces the hooks present into the graph and guards on their
    number, so arming and disarming them compiled a whole second graph (forward and backward) for
    the hooked steps. `warm`: a compiled forward pass has run (the engine's warm-up ends there)."""

    def __init__(self, model: nn.Module, **compile_options: Any):
        super().__init__()
        self.model = model
        self.compiled = torch.compile(model, **compile_options)
        self.hook_tables = torch_module_hook_tables(model)
        self.warm = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.hook_tables):
            return self.model(x)
        self.warm = True
        return self.compiled(x)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:  # what the wrapped model has (DistributedDataParallel's no_sync)
            return getattr(super().__getattr__("model"), name)
