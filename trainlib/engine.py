"""One training epoch and one evaluation pass.

Every optimizer steps through a closure (``optimizer.step(closure)``, which all torch
optimizers accept): LBFGS re-evaluates the loss several times per step; the others call
it once. Inputs of shape (B, ncrops, C, H, W) (five_crop / ten_crop) are run as B*ncrops
images and their logits averaged per sample. Targets may be class ids (B,) or, after a
batch transform (mixup, cutmix), class probabilities (B, K).
"""
from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from trainlib.ema import ModelEma
from trainlib.precision import Execution
from trainlib.schedulers import LRSchedule


@dataclass
class EpochResult:
    loss: float
    acc: float
    samples: int
    seconds: float  # without the warm-up step
    warmup_samples: int = 0  # the first step's, when timed apart (compilation)
    warmup_seconds: float = 0.0

    @property
    def img_per_s(self) -> float:
        timed = self.samples - self.warmup_samples
        return timed / self.seconds if self.seconds > 0 else 0.0


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


@dataclass
class StepOptions:
    """How an optimizer step is computed (see trainlib.precision, trainlib.ema); the defaults are
    plain fp32 steps, one batch each."""

    execution: Execution | None = None  # None: fp32, inputs left where they are
    scaler: torch.amp.GradScaler | None = None  # fp16's gradient scaler
    clip_grad_norm: float | None = None
    clip_grad_value: float | None = None
    accumulate: int = 1  # micro-batches per optimizer step
    ema: ModelEma | None = None

    def autocast(self) -> AbstractContextManager:
        return self.execution.autocast() if self.execution else nullcontext()

    def place(self, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.execution.place(x) if self.execution else x.to(device, non_blocking=True)
        return x, y.to(device, non_blocking=True)

    @property
    def scaling(self) -> bool:
        return self.scaler is not None and self.scaler.is_enabled()

    @property
    def clipping(self) -> bool:
        return self.clip_grad_norm is not None or self.clip_grad_value is not None


def train_one_epoch(model: nn.Module, loader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                    schedule: LRSchedule, device: torch.device, desc: str = "", progress: bool = True,
                    batch_transform: Callable | None = None, on_batch: BatchHook | None = None,
                    options: StepOptions | None = None, deadline: float | None = None,
                    time_first_step: bool = False) -> EpochResult:
    """One pass over `loader`, `options.accumulate` batches per optimizer step. Loss and accuracy
    are summed on the device and read once, at the end (no host sync per batch).

    `deadline` (a time.monotonic() value) ends the epoch after the step that passes it.
    `time_first_step` times the steps up to the first one the model calls warm apart (torch.compile's
    compilation; a model without `warm` is warm at once): they are left out of `seconds` and img/s
    and reported as `warmup_seconds`."""
    options = options or StepOptions()
    model.train()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen, warmup_samples, warmup_seconds = 0, 0, 0.0
    accumulate, last = options.accumulate, len(loader) - 1
    micro: list[tuple[torch.Tensor, torch.Tensor]] = []
    start = time.perf_counter()
    bar = tqdm(loader, desc=desc, leave=False, unit="batch", disable=None if progress else True)  # None: tty only
    for index, (x, y) in enumerate(bar):
        x, y = options.place(x, y, device)
        if batch_transform is not None:
            x, y = batch_transform(x, y)
        micro.append((x, y))
        if len(micro) < accumulate and index < last:
            continue
        after_backward = None if on_batch is None else (
            lambda logits, loss, x=x, y=y, index=index: on_batch(BatchStep(index, x, y, logits, loss)))
        for (_, mb_y), (logits, loss) in zip(micro, accumulated_step(model, loss_fn, optimizer, micro, options,
                                                                      after_backward)):
            n = mb_y.shape[0]  # len() of a tensor goes through Python
            total_loss.add_(loss, alpha=n)  # one op (a tensor times a Python int is two)
            correct += (logits.argmax(1) == class_ids(mb_y)).sum()
            seen += n
        micro = []
        schedule.after_batch()
        if time_first_step and not warmup_samples and getattr(model, "warm", True):
            synchronize(device)
            warmup_samples, warmup_seconds = seen, time.perf_counter() - start
            start = time.perf_counter()
        if deadline is not None and time.monotonic() >= deadline:
            break
    loss, acc = float(total_loss) / seen, float(correct) / seen  # the epoch's one host sync: time after it
    seconds = time.perf_counter() - start
    return EpochResult(loss, acc, seen, seconds, warmup_samples, warmup_seconds)


def optimizer_step(model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                   x: torch.Tensor, y: torch.Tensor,
                   after_backward: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
                   options: StepOptions | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One step on one batch; returns its (detached) logits and loss. `after_backward(logits, loss)`
    runs once, after the first evaluation's backward (gradients unscaled, not yet clipped)."""
    return accumulated_step(model, loss_fn, optimizer, [(x, y)], options or StepOptions(), after_backward)[0]


def accumulated_step(model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                     micro: list[tuple[torch.Tensor, torch.Tensor]], options: StepOptions,
                     after_backward: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
                     ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One optimizer step over the micro-batches, whose gradients add up to those of their union:
    each micro-batch's mean loss is weighted by its share of the samples. Under DDP the gradients
    are all-reduced once, with the last micro-batch. Returns each micro-batch's (logits, loss) from
    the closure's first evaluation (LBFGS evaluates several times; the others once)."""
    last = len(micro) - 1
    total = sum(len(y) for _, y in micro) if last else 0  # the samples, to weigh several micro-batches
    scaling, clipping = options.scaling, options.clipping
    first: list[tuple[torch.Tensor, torch.Tensor]] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        step_loss = None
        for i, (x, y) in enumerate(micro):
            with _no_sync(model, i < last):
                with options.autocast():
                    logits = forward(model, x)
                    loss = loss_fn(logits, y)
                share = loss if not last else loss * (len(y) / total)
                (options.scaler.scale(share) if scaling else share).backward()
            outputs.append((fp32(logits.detach()), fp32(loss.detach())))
            step_loss = share.detach() if i == 0 else step_loss + share.detach()
        if scaling:
            options.scaler.unscale_(optimizer)
        if not first:
            first.extend(outputs)
            if after_backward is not None:
                after_backward(*outputs[-1])
        if clipping:
            clip_gradients(optimizer, options)
        return step_loss

    if scaling:  # GradScaler takes no closure (fp16 + LBFGS is refused by the config)
        closure()
        options.scaler.step(optimizer)
        options.scaler.update()
    else:
        optimizer.step(closure)
    if options.ema is not None:
        options.ema.update()
    return first


def fp32(t: torch.Tensor) -> torch.Tensor:
    """`t` as float32 (itself when it is: `.float()` costs a dispatch even then)."""
    return t if t.dtype is torch.float32 else t.float()


def clip_gradients(optimizer: torch.optim.Optimizer, options: StepOptions) -> None:
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if options.clip_grad_value is not None:
        nn.utils.clip_grad_value_(params, options.clip_grad_value, foreach=True)
    if options.clip_grad_norm is not None:
        nn.utils.clip_grad_norm_(params, options.clip_grad_norm, foreach=True)


def _no_sync(model: nn.Module, skip: bool) -> AbstractContextManager:
    """DDP's no_sync for all but the last micro-batch: one all-reduce per optimizer step."""
    return model.no_sync() if skip and hasattr(model, "no_sync") else nullcontext()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
def evaluate(model: nn.Module, loader, loss_fn: nn.Module, device: torch.device,
             execution: Execution | None = None) -> EvalResult:
    """`execution`: the run's autocast and memory format (default: fp32, inputs as they come)."""
    model.eval()
    options = StepOptions(execution)
    total_loss = torch.zeros((), device=device)
    outputs, targets = [], []
    for x, y in loader:
        x, y = options.place(x, y, device)
        with options.autocast():
            logits = forward(model, x).float()
            total_loss += loss_fn(logits, y) * len(y)
        outputs.append(logits)
        targets.append(y)
    logits_t, targets_t = torch.cat(outputs).float().cpu(), torch.cat(targets).cpu()
    preds_t = logits_t.argmax(1)
    n = len(targets_t)
    return EvalResult(float(total_loss) / n, float((preds_t == targets_t).float().mean()), preds_t, targets_t,
                      logits_t)
