"""One training epoch and one evaluation pass."""
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
                    on_batch: BatchHook | None = None) -> EpochResult:
    model.train()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    start = time.perf_counter()
    for index, (x, y) in enumerate(tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch")):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if on_batch is not None:
            on_batch(BatchStep(index, x, y, logits, loss))
        optimizer.step()
        schedule.after_batch()
        total_loss += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
    seconds = time.perf_counter() - start
    return EpochResult(float(total_loss) / seen, float(correct) / seen, seen, seconds)


@torch.no_grad()
def evaluate(model: nn.Module, loader, loss_fn: nn.Module, device: torch.device) -> EvalResult:
    model.eval()
    total_loss = torch.zeros((), device=device)
    outputs, targets = [], []
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        total_loss += loss_fn(logits, y) * len(y)
        outputs.append(logits)
        targets.append(y)
    logits_t, targets_t = torch.cat(outputs).float().cpu(), torch.cat(targets).cpu()
    preds_t = logits_t.argmax(1)
    n = len(targets_t)
    return EvalResult(float(total_loss) / n, float((preds_t == targets_t).float().mean()), preds_t, targets_t, logits_t)
