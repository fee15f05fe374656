"""One training epoch and one evaluation pass.

Every optimizer steps through a closure (``optimizer.step(closure)``, which all torch
optimizers accept): LBFGS re-evaluates the loss several times per step; the others call
it once. Inputs of shape (B, ncrops, C, H, W) (five_crop / ten_crop) are run as B*ncrops
images and their logits averaged per sample. Targets may be class ids (B,) or, after a
batch transform (mixup, cutmix), class probabilities (B, K).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from trainlib.schedulers import LRSchedule


@dataclass
class EpochResult:
    loss: float
    acc: float
    samples: int
    seconds: float

    @property
    def img_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0


@dataclass
class EvalResult:
    loss: float
    acc: float
    preds: torch.Tensor
    targets: torch.Tensor
    logits: torch.Tensor


@dataclass
class BatchStep:
    """One training batch after backward, before the optimizer step (for observers)."""

    index: int
    inputs: torch.Tensor
    targets: torch.Tensor
    logits: torch.Tensor
    loss: torch.Tensor


BatchHook = Callable[[BatchStep], None]


def train_one_epoch(model: nn.Module, loader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                    schedule: LRSchedule, device: torch.device, desc: str = "", progress: bool = True,
                    batch_transform: Callable | None = None, on_batch: BatchHook | None = None) -> EpochResult:
    model.train()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    start = time.perf_counter()
    bar = tqdm(loader, desc=desc, leave=False, unit="batch", disable=None if progress else True)  # None: tty only
    for index, (x, y) in enumerate(bar):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if batch_transform is not None:
            x, y = batch_transform(x, y)
        after_backward = None if on_batch is None else (
            lambda logits, loss: on_batch(BatchStep(index, x, y, logits, loss)))
        logits, loss = optimizer_step(model, loss_fn, optimizer, x, y, after_backward)
        schedule.after_batch()
        total_loss += loss * len(y)
        correct += (logits.argmax(1) == class_ids(y)).sum()
        seen += len(y)
    seconds = time.perf_counter() - start
    return EpochResult(float(total_loss) / seen, float(correct) / seen, seen, seconds)


def optimizer_step(model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                   x: torch.Tensor, y: torch.Tensor,
                   after_backward: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """One step; returns the (detached) logits and loss of the closure's first evaluation.
    `after_backward(logits, loss)` runs once, after that evaluation's backward."""
    first: list[torch.Tensor] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        logits = forward(model, x)
        loss = loss_fn(logits, y)
        loss.backward()
        if not first:
            first.extend((logits.detach(), loss.detach()))
            if after_backward is not None:
                after_backward(*first)
        return loss

    optimizer.step(closure)
    return first[0], first[1]


def forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits (B, K); a (B, ncrops, C, H, W) batch gets each sample's crop logits averaged."""
    if x.dim() != 5:
        return model(x)
    b, ncrops = x.shape[:2]
    return model(x.flatten(0, 1)).view(b, ncrops, -1).mean(1)


def class_ids(y: torch.Tensor) -> torch.Tensor:
    """Class ids from ids (B,) or class probabilities (B, K)."""
    return y if y.dim() == 1 else y.argmax(1)


@torch.no_grad()
def evaluate(model: nn.Module, loader, loss_fn: nn.Module, device: torch.device) -> EvalResult:
    model.eval()
    total_loss = torch.zeros((), device=device)
    outputs, targets = [], []
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = forward(model, x)
        total_loss += loss_fn(logits, y) * len(y)
        outputs.append(logits)
        targets.append(y)
    logits_t, targets_t = torch.cat(outputs).float().cpu(), torch.cat(targets).cpu()
    preds_t = logits_t.argmax(1)
    n = len(targets_t)
    return EvalResult(float(total_loss) / n, float((preds_t == targets_t).float().mean()), preds_t, targets_t,
                      logits_t)
