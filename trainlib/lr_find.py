"""LR range test (`launch lr-find`): train a few batches with an exponentially growing lr.

The lr goes from `start_lr` to `end_lr` over `num_iters` batches (the train loader is cycled);
the loss is smoothed (exponential moving average over ~10 batches, bias-corrected) and the
test stops early once the smoothed loss exceeds `diverge` times its minimum, or is NaN/Inf.

Suggested lr: the lr at the smoothed loss's minimum / 10 (a step back from where training
turns unstable). Also reported: the steepest descent of the smoothed loss against log10(lr)
before that minimum, a more aggressive choice. When the smoothed loss never falls by
`MIN_DROP` of its start, the test is inconclusive and nothing is suggested (a model that
does not learn within the test's batches at any lr, e.g. the seed's Net with its tiny
N(0, 0.01) linear init: it needs two epochs to leave its plateau). The model is thrown away.
"""
from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import torch

from trainlib import tags as tag
from trainlib.config import TrainConfig, flatten
from trainlib.engine import StepOptions, accumulated_step
from trainlib.errors import RunStopped
from trainlib.heap import startup_done

if TYPE_CHECKING:
    from trainlib.run import Parts

SKIP_START = 0.1  # the first points' smoothed loss is still mostly the initial loss
MIN_DROP = 0.05  # the smoothed loss must fall this much (relative) for a suggestion


@dataclass
class RangeTest:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    stopped_early: bool

    @property
    def min_loss_lr(self) -> float:
        return self.lrs[int(np.argmin(self.smoothed))]

    @property
    def drop(self) -> float:
        """How far (relative) the smoothed loss fell below its start."""
        return (self.smoothed[0] - min(self.smoothed)) / abs(self.smoothed[0])

    @property
    def suggested_lr(self) -> float | None:
        return self.min_loss_lr / 10 if self.drop >= MIN_DROP else None

    @property
    def steepest_lr(self) -> float | None:
        """Steepest descent of the smoothed loss vs log10(lr), before the minimum."""
        end = int(np.argmin(self.smoothed)) + 1
        start = min(int(len(self.lrs) * SKIP_START), max(end - 3, 0))
        if self.drop < MIN_DROP or end - start < 3:
            return None
        slopes = np.gradient(np.array(self.smoothed[start:end]), np.log10(self.lrs[start:end]))
        return self.lrs[start + int(np.argmin(slopes))]


def _cycle(loader) -> Iterator:
    while True:
        yield from loader


def range_test(model: torch.nn.Module, loader, loss_fn: torch.nn.Module, optimizer: torch.optim.Optimizer,
               device: torch.device, start_lr: float, end_lr: float, num_iters: int,
               smoothing: float = 0.9, diverge: float = 4.0, batch_transform: Callable | None = None,
               options: StepOptions | None = None) -> RangeTest:
    """Grow the lr exponentially from start_lr to end_lr, one optimizer step per lr, stepping like
    training does (engine.accumulated_step: LBFGS's closure, five-crop inputs; `batch_transform` is
    training's mixup/cutmix; `options` the run's precision, fp16 scaler, clipping, accumulation and
    channels_last); stop early once the smoothed loss diverges."""
    options = options or StepOptions()
    base = [group["lr"] for group in optimizer.param_groups]
    ratios = [lr / base[0] for lr in base]  # keep per-group ratios (e.g. a faster head)
    growth = (end_lr / start_lr) ** (1 / max(num_iters - 1, 1))
    result = RangeTest([], [], [], stopped_early=False)
    average, best = 0.0, math.inf
    model.train()
    batches = _cycle(loader)
    for i in range(num_iters):
        lr = start_lr * growth ** i
        for group, ratio in zip(optimizer.param_groups, ratios):
            group["lr"] = lr * ratio
        value = _step_loss(model, loss_fn, optimizer, _micro_batches(batches, device, batch_transform, options), options)
        if not math.isfinite(value):
            result.stopped_early = True
            break
        average = smoothing * average + (1 - smoothing) * value
        smooth = average / (1 - smoothing ** (i + 1))
        result.lrs.append(lr)
        result.losses.append(value)
        result.smoothed.append(smooth)
        if smooth > diverge * best:
            result.stopped_early = True
            break
        best = min(best, smooth)
    return result


def _micro_batches(batches: Iterator, device: torch.device, batch_transform: Callable | None,
                   options: StepOptions) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The next optimizer step's `options.accumulate` batches, placed and transformed as training does."""
    micro = [options.place(*next(batches), device) for _ in range(options.accumulate)]
    return micro if batch_transform is None else [batch_transform(x, y) for x, y in micro]


def _step_loss(model: torch.nn.Module, loss_fn: torch.nn.Module, optimizer: torch.optim.Optimizer,
               micro: list[tuple[torch.Tensor, torch.Tensor]], options: StepOptions) -> float:
    """One optimizer step over the micro-batches; their mean loss per sample."""
    losses = accumulated_step(model, loss_fn, optimizer, micro, options)
    return float(sum(loss * len(y) for (_, y), (_, loss) in zip(micro, losses))) / sum(len(y) for _, y in micro)


def parts_range_test(parts: Parts, start_lr: float, end_lr: float, num_iters: int) -> RangeTest:
    """The range test on a run's parts (`run.build_parts`), with the run's step options."""
    return range_test(parts.model, parts.loaders["train"], parts.loss_fn, parts.optimizer, parts.device,
                      start_lr, end_lr, num_iters, batch_transform=parts.batch_transform, options=parts.step)


def plot(test: RangeTest, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(test.lrs, test.losses, color="0.75", linewidth=0.8, label="loss")
    ax.plot(test.lrs, test.smoothed, color="C0", label="smoothed loss")
    if test.suggested_lr is not None:
        ax.axvline(test.suggested_lr, color="C2", linestyle="--", label=f"suggested: min-loss lr / 10 = {test.suggested_lr:.2g}")
    if test.steepest_lr is not None:
        ax.axvline(test.steepest_lr, color="C1", linestyle=":", label=f"steepest descent {test.steepest_lr:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("train loss")
    low, high = min(test.smoothed), max(test.smoothed[0], min(test.smoothed) * 2)
    ax.set_ylim(low - 0.1 * (high - low), high + 0.2 * (high - low))
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_csv(test: RangeTest, path: Path) -> Path:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["lr", "loss", "smoothed_loss"])
        out.writerows(zip(test.lrs, test.losses, test.smoothed))
    return path


def find_lr(cfg: TrainConfig, start_lr: float, end_lr: float, num_iters: int,
            echo: Callable[[str], None] = print, command: str | None = None) -> RangeTest:
    """Run the range test on the config's model/data/optimizer as its own tracked run
    (`command`: the command line that started it, for the `launch.command` tag)."""
    from trainlib.run import build_parts
    from trainlib.startup import run_tags
    from trainlib.tracking.open import closing, open_trackers

    parts = build_parts(cfg)
    tags = {**run_tags(cfg, parts.device, command), tag.KIND: "lr-find"}
    handle = open_trackers(cfg, tags)
    startup_done()
    with closing(handle.tracker) as tracker:
        started = time.perf_counter()
        test = parts_range_test(parts, start_lr, end_lr, num_iters)
        if len(test.lrs) < 2:
            raise RunStopped(f"the loss was not finite from the first batches at lr {start_lr:g}; lower --start-lr")
        tracker.log_params({**flatten(cfg.to_dict()), "lr_find.start_lr": start_lr, "lr_find.end_lr": end_lr,
                            "lr_find.num_iters": num_iters})
        found = {"lr_find/suggested_lr": test.suggested_lr, "lr_find/steepest_lr": test.steepest_lr}
        tracker.log_metrics({"lr_find/min_loss_lr": test.min_loss_lr, "lr_find/loss_drop": test.drop,
                             "lr_find/seconds": time.perf_counter() - started,
                             **{k: v for k, v in found.items() if v is not None}}, step=len(test.lrs))
        title = f"LR range test: {cfg.model['name']} on {cfg.data['name']}, {cfg.optimizer['name']}"
        for path in (plot(test, handle.run_dir / "lr_find.png", title), write_csv(test, handle.run_dir / "lr_find.csv")):
            tracker.log_artifact(path)
    stop = "stopped early: the loss diverged" if test.stopped_early else "reached end_lr"
    echo(f"tested {len(test.lrs)} batches, lr {test.lrs[0]:.2g} .. {test.lrs[-1]:.2g} ({stop})")
    if test.suggested_lr is None:
        echo(f"no suggestion: the smoothed loss fell only {test.drop:.1%} (needs {MIN_DROP:.0%}); the model does not "
             f"learn within {len(test.lrs)} batches at any lr - try more --num-iters, or check the init and data")
    else:
        steepest = f"   (steepest descent, more aggressive: {test.steepest_lr:.3g})" if test.steepest_lr else ""
        echo(f"suggested lr: {test.suggested_lr:.3g} (min-loss lr {test.min_loss_lr:.3g} / 10){steepest}")
    echo(f"plot: {handle.run_dir / 'lr_find.png'}   run id: {handle.run_id}")
    return test
