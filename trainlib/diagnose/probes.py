"""Probes: short experiments on a run's own config and data that tell data, model and optimizer apart.

Each probe builds the run's parts afresh (same model, init, seed, data, transforms, loss;
one process, no tracking) and trains for a few seconds:

- `overfit_one_batch`: the first train batch, again and again, with the run's optimizer and
  with a reference optimizer (Adam, lr 1e-3, no weight decay). The reference fitting it says the
  model can; the run's optimizer not even making progress on it says the optimizer is at fault.
- `label_shuffle`: a short training (reference optimizer) on the real labels and on labels
  shuffled within each batch; if the real labels give no better validation accuracy than the
  shuffled ones, the labels carry no signal for this model.
- `zero_inputs`: the same short training on zeroed inputs (an input-independent baseline that
  can only learn the class prior); if the real inputs do no better, they do not reach the model.
- `lr_probe`: `lr_find.range_test` on the run's optimizer from a tenth of its lr upward: the
  loss falling only at lrs far above the run's tells "lr too low" from "nothing to learn".

The controls use the reference optimizer so that they test the data, not the run's optimizer.
Every step runs as the run's do: with the run's optimizer, its step options (precision, fp16
scaler, clipping, accumulation, channels_last); with the reference optimizer, its precision,
scaler and channels_last (clipping and accumulation belong to the run's optimizer settings).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch

from trainlib.config import TrainConfig, merge
from trainlib.engine import StepOptions
from trainlib.heap import startup_done

REFERENCE = {"name": "adam", "lr": 1e-3}
OVERFIT_STEPS = 150
FIT_FRACTION = 0.1  # "near zero": the loss on the batch below this share of its start
PROGRESS = 0.25  # the run's optimizer makes progress when it takes this share off the batch's loss
CONTROL_STEPS = 120
SIGNAL = 0.1  # validation accuracy the real data must add over a control to count as signal
LR_ITERS = 100
LR_FACTOR = 10.0  # the range test's suggested lr this many times the run's: the lr is too low
PROBE_NAMES = ("overfit_one_batch", "label_shuffle", "zero_inputs", "lr_probe")


@dataclass
class ProbeResult:
    name: str
    outcome: str  # a short key the verdict reads, e.g. "optimizer_cannot_fit", "no_signal"
    message: str
    evidence: dict[str, Any]
    seconds: float
    curves: dict[str, list[float]] = field(default_factory=dict)  # for the figure


class Bench:
    """Fresh parts of the run's config, as often as the probes need them."""

    def __init__(self, cfg: TrainConfig):
        quiet = {"visuals": {"enabled": False}, "diagnose": {"enabled": False}, "device": "auto",
                 "distributed": {"workers": 1}, "loader": {"num_workers": 0}}
        self.cfg = TrainConfig.model_validate(merge(cfg.to_dict(), quiet))
        self.controls: dict[str, tuple[float, list[float]]] = {}  # variant -> (valid acc, train losses)

    def parts(self):
        from trainlib.run import build_parts

        return build_parts(self.cfg)

    @staticmethod
    def reference_step(parts) -> StepOptions:
        """The reference optimizer's step options: the run's precision, scaler and channels_last."""
        return StepOptions(parts.execution, parts.execution.scaler())

    def reference(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        from trainlib.optimizers import build_optimizer

        return build_optimizer(REFERENCE, model)

    def control(self, variant: str) -> tuple[float, list[float]]:
        """(valid accuracy, train losses) of the reference optimizer's short training on a variant of the data."""
        if variant not in self.controls:
            self.controls[variant] = _short_training(self, variant)
        return self.controls[variant]


def _cycle(loader) -> Iterator:
    while True:
        yield from loader


def _fit(step: Callable[[], torch.Tensor], steps: int, stop_share: float) -> list[float]:
    """Losses of up to `steps` steps; stops once the loss is below `stop_share` of the first, or not finite."""
    losses: list[float] = []
    for _ in range(steps):
        losses.append(float(step()))
        if not math.isfinite(losses[-1]) or losses[-1] < stop_share * losses[0]:
            break
    return losses


def overfit_one_batch(bench: Bench) -> ProbeResult:
    from trainlib.engine import optimizer_step

    runs = {}
    for who in ("run", "reference"):
        parts = bench.parts()
        parts.model.train()
        optimizer = parts.optimizer if who == "run" else bench.reference(parts.model)
        options = parts.step if who == "run" else bench.reference_step(parts)
        x, y = options.place(*next(iter(parts.loaders["train"])), parts.device)
        stop_share = 1 - PROGRESS if who == "run" else FIT_FRACTION
        runs[who] = _fit(lambda: optimizer_step(parts.model, parts.loss_fn, optimizer, x, y, options=options)[1],
                         OVERFIT_STEPS, stop_share)
    start = runs["reference"][0]
    fits = runs["reference"][-1] < FIT_FRACTION * start  # the loss is positive for every loss here at a fit
    own = runs["run"]
    progress = 1 - min(own) / own[0] if all(math.isfinite(v) for v in own) and own[0] > 0 else 0.0
    learns = progress >= PROGRESS
    evidence = {"initial_loss": start, "reference_final": runs["reference"][-1], "run_final": own[-1],
                "run_progress": progress, "steps": OVERFIT_STEPS, "reference_optimizer": REFERENCE,
                "run_optimizer": bench.cfg.optimizer}
    opt = _describe(bench.cfg.optimizer)
    if not fits:
        outcome, message = "model_cannot_fit", (
            f"even {_describe(REFERENCE)} cannot fit one batch: loss {start:.3g} -> {runs['reference'][-1]:.3g} "
            f"in {len(runs['reference'])} steps (needs < {FIT_FRACTION:.0%} of the start): the model (or what reaches it)")
    elif not learns:
        outcome, message = "optimizer_cannot_fit", (
            f"{_describe(REFERENCE)} fits one batch (loss {start:.3g} -> {runs['reference'][-1]:.3g}) but the run's "
            f"{opt} takes only {progress:.1%} off it in {len(own)} steps: the optimizer settings")
    else:
        outcome, message = "fits", (
            f"the model fits one batch ({_describe(REFERENCE)}: {start:.3g} -> {runs['reference'][-1]:.3g}) and the "
            f"run's {opt} makes progress on it ({progress:.0%} off in {len(own)} steps): model and optimizer can learn")
    return ProbeResult("overfit_one_batch", outcome, message, evidence, 0.0, runs)


def _describe(spec: dict[str, Any]) -> str:
    args = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in spec.items() if k != "name")
    return f"{spec['name']} ({args})" if args else spec["name"]


@torch.no_grad()
def _accuracy(model: torch.nn.Module, loader, device: torch.device, zero: bool) -> float:
    from trainlib.engine import forward

    model.eval()
    correct = seen = 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = forward(model, torch.zeros_like(x) if zero else x)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
    return correct / max(seen, 1)


def _short_training(bench: Bench, variant: str) -> tuple[float, list[float]]:
    """`variant`: real (the data as is), shuffled (labels permuted in each batch), zeroed (inputs zeroed)."""
    from trainlib.engine import optimizer_step

    parts = bench.parts()
    optimizer = bench.reference(parts.model)
    options = bench.reference_step(parts)
    shuffle = torch.Generator().manual_seed(bench.cfg.seed)
    batches = _cycle(parts.loaders["train"])
    parts.model.train()
    losses = []
    for _ in range(CONTROL_STEPS):
        x, y = next(batches)
        if variant == "shuffled":
            y = y[torch.randperm(len(y), generator=shuffle)]
        if variant == "zeroed":
            x = torch.zeros_like(x)
        losses.append(float(optimizer_step(parts.model, parts.loss_fn, optimizer, *options.place(x, y, parts.device),
                                           options=options)[1]))
    return _accuracy(parts.model, parts.loaders["valid"], parts.device, zero=variant == "zeroed"), losses


def _control(bench: Bench, name: str, variant: str, what: str, verdict_no: str) -> ProbeResult:
    real, real_losses = bench.control("real")
    other, other_losses = bench.control(variant)
    gain = real - other
    evidence = {"valid_acc_real": real, f"valid_acc_{variant}": other, "gain": gain, "steps": CONTROL_STEPS,
                "reference_optimizer": REFERENCE}
    short = f"{CONTROL_STEPS} steps of {_describe(REFERENCE)}"
    if gain < SIGNAL:
        outcome = "no_signal"
        message = (f"{short}: real data reaches valid acc {real:.1%}, {what} {other:.1%} (gain {gain:+.1%}, "
                   f"needs {SIGNAL:.0%}): {verdict_no}")
    else:
        outcome = "signal"
        message = f"{short}: real data reaches valid acc {real:.1%}, {what} {other:.1%} (gain {gain:+.1%})"
    return ProbeResult(name, outcome, message, evidence, 0.0, {"real": real_losses, variant: other_losses})


def label_shuffle(bench: Bench) -> ProbeResult:
    return _control(bench, "label_shuffle", "shuffled", "shuffled labels",
                    "the labels carry no signal for this model")


def zero_inputs(bench: Bench) -> ProbeResult:
    return _control(bench, "zero_inputs", "zeroed", "zeroed inputs (class prior only)",
                    "the inputs do not reach the model")


def lr_probe(bench: Bench) -> ProbeResult:
    from trainlib.lr_find import parts_range_test

    parts = bench.parts()
    lr = float(bench.cfg.optimizer.get("lr", parts.optimizer.param_groups[0]["lr"]))
    start, end = lr / 10, max(10.0, lr * 100)
    test = parts_range_test(parts, start, end, LR_ITERS)
    suggested = test.suggested_lr if len(test.lrs) >= 2 else None
    evidence = {"run_lr": lr, "suggested_lr": suggested, "min_loss_lr": test.min_loss_lr if test.lrs else None,
                "loss_drop": test.drop if test.lrs else 0.0, "iters": len(test.lrs), "range": [start, end]}
    if suggested is None:
        outcome = "nothing_to_learn"
        drop = f"fell only {test.drop:.1%}" if test.lrs else "was not finite"
        message = (f"range test {start:.2g}..{end:.2g} over {len(test.lrs)} batches: the smoothed loss {drop} at "
                   f"any lr - no lr makes this model learn quickly")
    elif suggested >= LR_FACTOR * lr:
        outcome = "lr_too_low"
        message = (f"range test: the loss falls at lrs far above the run's {lr:.2g} (suggested {suggested:.2g}, "
                   f"{suggested / lr:.0f}x): the lr is too low")
    else:
        outcome = "lr_ok"
        message = f"range test: suggested lr {suggested:.2g}, the run's {lr:.2g} is not far below it"
    curves = {"lr": test.lrs, "smoothed": test.smoothed}
    return ProbeResult("lr_probe", outcome, message, evidence, 0.0, curves)


PROBES: dict[str, Callable[[Bench], ProbeResult]] = {
    "overfit_one_batch": overfit_one_batch, "label_shuffle": label_shuffle, "zero_inputs": zero_inputs,
    "lr_probe": lr_probe}


def run_probes(cfg: TrainConfig, names: tuple[str, ...] = PROBE_NAMES,
               echo: Callable[[str], None] = lambda _: None) -> list[ProbeResult]:
    """Run the named probes (seconds each are recorded; the controls share their real-data training)."""
    startup_done()
    bench = Bench(cfg)
    results = []
    for name in names:
        started = time.perf_counter()
        result = PROBES[name](bench)
        result.seconds = round(time.perf_counter() - started, 2)
        echo(f"probe {name} ({result.seconds:.1f}s): {result.message}")
        results.append(result)
    return results


def plot(results: list[ProbeResult], path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 3.8), squeeze=False)
    for ax, result in zip(axes[0], results):
        if result.name == "lr_probe":
            ax.plot(result.curves["lr"], result.curves["smoothed"], color="C0")
            ax.axvline(result.evidence["run_lr"], color="C3", linestyle="--", label="run's lr")
            ax.set_xscale("log")
            ax.set_xlabel("learning rate")
        else:
            for label, losses in result.curves.items():
                ax.plot(range(1, len(losses) + 1), losses, label=label)
            ax.set_xlabel("step")
        ax.set_ylabel("train loss")
        ax.set_title(f"{result.name}: {result.outcome}", fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
