"""The diagnosis observer: runs the cheap checks during training and records what it finds.

Step 0 (first batch, before the first optimizer step; see step0.py): the initial loss, each
layer's output scale, identical inputs, label histograms.
Per run: labels in range, class balance, symmetric units (before training). First batch:
input normalization. Every `diagnose.every_batches` batches: loss finite / not exploding,
per-layer gradient norms, the update/weight ratio of the next step, dead units. Every epoch:
NaN/Inf, divergence, a flat loss, a growing train/valid gap; plus `diag/*` summary metrics
(extremes of the sampled statistics) logged with the epoch's metrics.
"""
from __future__ import annotations

import math

from torch import nn

from trainlib.config import DiagnoseConfig
from trainlib.live_checks import curves, data_checks
from trainlib.live_checks.activations import DeadUnits
from trainlib.live_checks.findings import Recorder
from trainlib.live_checks.gradients import UpdateRatios, grad_norms, layer_weights
from trainlib.live_checks.step0 import Step0
from trainlib.live_checks.weights import first_nonfinite, symmetric_layers
from trainlib.engine import BatchStep, EvalResult
from trainlib.observers import FitContext, Observer


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.3g}" for name, value in values.items())


class EpochStats:
    """Extremes of the sampled per-layer statistics over one epoch (logged as `diag/*` metrics)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def add(self, key: str, values: list[float], pick=max) -> None:
        if values:
            best = pick(values)
            self.values[key] = pick(best, self.values[key]) if key in self.values else best

    def pop(self) -> dict[str, float]:
        values, self.values = self.values, {}
        return values


class DiagnoseObserver(Observer):
    wants_batches = True

    def __init__(self, cfg: DiagnoseConfig):
        self.cfg = cfg
        self.stats = EpochStats()
        self.initial_loss: float | None = None
        self.history: dict[str, list[float]] = {"train/loss": [], "train/acc": [], "valid/acc": []}

    def on_fit_start(self, ctx: FitContext) -> None:
        self.model: nn.Module = ctx.model
        self.epoch = ctx.start_epoch + 1
        self.first_batch = True
        self.recorder = Recorder(ctx.tracker, ctx.run_dir, ctx.echo, self.cfg.stop_on)
        self.weights = layer_weights(ctx.model)
        self.updates = UpdateRatios(self.weights)
        self.dead = DeadUnits(ctx.model)
        self.dead.armed = True
        self.step0 = Step0(ctx, self.cfg) if self.cfg.step0 and ctx.start_epoch == 0 else None
        self._check_data(ctx)
        self._check_symmetry(ctx.start_epoch)

    def _report(self, check: str, problem: data_checks.Problem | None, batch: int | None = None,
                epoch: int | None = None) -> None:
        if problem is not None:
            message, evidence = problem
            self.recorder.report(check, self.epoch if epoch is None else epoch, message, evidence, batch)

    def _check_data(self, ctx: FitContext) -> None:
        start = ctx.start_epoch
        self._report("labels", data_checks.labels_out_of_range(ctx.data), epoch=start)
        self._report("class_imbalance", data_checks.class_imbalance(
            ctx.data.train.labels, ctx.data.class_names, self.cfg.imbalance_ratio), epoch=start)

    def _check_symmetry(self, epoch: int) -> None:
        layers = symmetric_layers(self.weights)
        if layers:
            self.recorder.report("symmetric_units", epoch, f"all units of {', '.join(layers)} have identical "
                                 f"weights, so they learn identically (a constant init?)", {"layers": layers})

    def after_backward(self, step: BatchStep) -> None:
        if self.first_batch:
            self.first_batch = False
            if self.step0 is not None:
                self.step0.check(step, self.recorder)
                self.step0 = None
            self._report("inputs_not_normalized", data_checks.inputs_not_normalized(step.inputs), step.index)
        if self.updates.pending:
            self._check_updates(step.index)
        if step.index % self.cfg.every_batches == 0:
            self._check_batch(step)
            self.updates.snapshot()
        if (step.index + 1) % self.cfg.every_batches == 0:
            self.dead.armed = True

    def _check_batch(self, step: BatchStep) -> None:
        loss = float(step.loss.detach())
        if self.initial_loss is None:
            self.initial_loss = loss
        if not math.isfinite(loss):
            self._report_nonfinite(f"loss is {loss}", step.index)
        self._report("divergence", curves.diverging(loss, self.initial_loss, self.initial_loss,
                                                    self.cfg.diverge_factor), step.index)
        self._check_gradients(step.index)
        self._check_dead(step.index)

    def _report_nonfinite(self, what: str, batch: int | None) -> None:
        layer = first_nonfinite(self.model)
        where = f"; first non-finite layer: {layer}" if layer else "; weights and gradients are finite"
        self.recorder.report("nan", self.epoch, what + where, {"layer": layer}, batch)

    def _check_gradients(self, batch: int) -> None:
        norms = grad_norms(self.weights)
        finite = {n: v for n, v in norms.items() if math.isfinite(v)}
        self.stats.add("diag/grad_norm_max", list(finite.values()))
        self.stats.add("diag/grad_norm_min", list(finite.values()), min)
        big = {n: v for n, v in finite.items() if v > self.cfg.max_grad_norm}
        if big:
            self.recorder.report("exploding_gradients", self.epoch, f"gradient norms above "
                                 f"{self.cfg.max_grad_norm:g}: {_fmt(big)}", {"grad_norms": norms}, batch)
        small = {n: v for n, v in finite.items() if v < self.cfg.min_grad_norm}
        if small:
            self.recorder.report("vanishing_gradients", self.epoch, f"{len(small)} of {len(norms)} layers get "
                                 f"(near) zero gradients (< {self.cfg.min_grad_norm:g}): {', '.join(small)}",
                                 {"grad_norms": norms}, batch)

    def _check_updates(self, batch: int) -> None:
        ratios = {n: v for n, v in self.updates.take().items() if math.isfinite(v)}
        self.stats.add("diag/update_ratio_max", list(ratios.values()))
        big = {n: v for n, v in ratios.items() if v > self.cfg.max_update_ratio}
        if big:
            self.recorder.report("exploding_gradients", self.epoch, f"one step changed weights by more than "
                                 f"{self.cfg.max_update_ratio:g}x their size: {_fmt(big)}",
                                 {"update_ratios": ratios}, batch)

    def _check_dead(self, batch: int) -> None:
        fractions = self.dead.take()
        self.stats.add("diag/dead_fraction_max", list(fractions.values()))
        dead = {n: v for n, v in fractions.items() if v >= self.cfg.dead_fraction}
        if dead:
            self.recorder.report("dead_relu", self.epoch, f"units never active on a batch: "
                                 f"{', '.join(f'{n} {v:.0%}' for n, v in dead.items())}",
                                 {"dead_fractions": fractions}, batch)

    def epoch_metrics(self) -> dict[str, float]:
        return self.stats.pop()

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult) -> None:
        for key, values in self.history.items():
            values.append(metrics.get(key, math.nan))  # valid/acc: NaN on an epoch that did not validate
        loss = metrics["train/loss"]
        if not math.isfinite(loss):
            self._report_nonfinite(f"train loss is {loss}", None)
        elif first_nonfinite(self.model):
            self._report_nonfinite("weights are not finite", None)
        self._check_curves(loss)
        self._check_symmetry(epoch)
        self.epoch = epoch + 1
        self.dead.armed = True

    def _check_curves(self, loss: float) -> None:
        cfg, losses = self.cfg, self.history["train/loss"]
        initial = self.initial_loss if self.initial_loss is not None else losses[0]
        previous = [v for v in losses[:-1] if math.isfinite(v)]
        reference = min([initial, *previous])
        self._report("divergence", curves.diverging(loss, reference, initial, cfg.diverge_factor))
        self._report("not_decreasing", curves.not_decreasing(losses, cfg.patience, cfg.min_loss_drop))
        self._report("overfitting", curves.overfitting(self.history["train/acc"], self.history["valid/acc"],
                                                       cfg.max_gap, cfg.patience))

    def on_fit_end(self, epoch: int, final: dict[str, float]) -> None:
        self.dead.close()
        if self.step0 is not None:  # no batch was trained
            self.step0.scales.close()
        self.recorder.save()
