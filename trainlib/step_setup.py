"""The `train.*` options and the optimizer's clipping keys turned into what the loop runs with."""
from __future__ import annotations

import math

import torch
from torch import nn

from trainlib.config import TrainConfig
from trainlib.ema import ModelEma
from trainlib.engine import StepOptions
from trainlib.optimizers import OPTIMIZERS
from trainlib.precision import Execution, check_supported, configure_backends


def build_execution(cfg: TrainConfig, device: torch.device) -> Execution:
    """Checks the precision against the device and sets the CUDA backend switches."""
    check_supported(cfg.train.precision, device)
    configure_backends(device, cfg.train.tf32)
    return Execution(device, cfg.train.precision, cfg.train.channels_last)


def build_step_options(cfg: TrainConfig, model: nn.Module, execution: Execution) -> StepOptions:
    """`model`: the unwrapped model (on its device, in its memory format) that EMA follows."""
    clip = OPTIMIZERS.shared_values(cfg.optimizer)
    return StepOptions(execution=execution, scaler=execution.scaler(), clip_grad_norm=clip["clip_grad_norm"],
                       clip_grad_value=clip["clip_grad_value"], accumulate=cfg.train.accumulate,
                       ema=ModelEma(model, cfg.train.ema) if cfg.train.ema else None)


def optimizer_steps(batches: int, accumulate: int) -> int:
    """Optimizer steps per epoch (the last step may take fewer micro-batches)."""
    return math.ceil(batches / accumulate)
