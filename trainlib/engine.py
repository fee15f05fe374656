"""One training epoch and one evaluation pass."""
from __future__ import annotations

import time
from dataclasses import dataclass

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


def train_one_epoch(model: nn.Module, loader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                    schedule: LRSchedule, device: torch.device, desc: str = "", progress: bool = True) -> EpochResult:
    model.train()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    start = time.perf_counter()
    for x, y in tqdm(loader, desc=desc, leave=False, disable=not progress, unit="batch"):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
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
    preds, targets = [], []
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = model(x)
        total_loss += loss_fn(logits, y) * len(y)
        preds.append(logits.argmax(1))
        targets.append(y)
    preds_t, targets_t = torch.cat(preds).cpu(), torch.cat(targets).cpu()
    n = len(targets_t)
    return EvalResult(float(total_loss) / n, float((preds_t == targets_t).float().mean()), preds_t, targets_t)
