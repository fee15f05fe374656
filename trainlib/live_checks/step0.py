"""Checks at step 0: on the first training batch, before the first optimizer step.

- the initial loss against what the loss gives for near-uniform logits (ln K for cross-entropy);
- each layer's output scale on that batch (forward hooks, there for this one batch only);
- the input batch: identical across samples (the inputs never reach the model)?
- the batch's and the train split's label histograms (recorded as evidence).

Findings from here rank before anything later in training (see catalog.py): a NaN that
follows an exploding forward pass at step 0 is explained by it.

Expected initial loss, per loss family. A network initialized well has small logits, so its
first loss is close to the loss of all-zero logits on the same targets; that is computed
(not tabulated), e.g. ln K for cross-entropy / NLL whatever the label smoothing, ln 2 for the
one-vs-rest logistic losses. The check needs a loss that grows without bound as the logits
blow up; the losses that are bounded or scale-invariant in the logits cannot show an
exploding init, and are skipped with the reason (`SKIPPED`).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from trainlib.live_checks.activations import LayerHooks
from trainlib.live_checks.data_checks import Problem

# name -> why the initial loss says nothing about the init for it
SKIPPED = {
    "l1": "L1 on softmax probabilities is bounded (at most 2/K), whatever the logits' scale",
    "mse": "MSE on softmax probabilities (Brier) is bounded (at most 2/K), whatever the logits' scale",
    "cosine_embedding": "the cosine between logits and class prototypes ignores the logits' scale",
    "triplet_margin": "distances between softmax probabilities and one-hot prototypes are bounded",
}
LOSS_FACTOR = 3.0  # the initial loss is "far above" its expectation beyond this factor ...
LOSS_MARGIN = 1.0  # ... and this absolute margin (a small expectation doubling is not an explosion)
SAME_INPUT_STD = 1e-6  # spread across the batch below which all samples are the same input


def expected_loss(loss_name: str, loss_fn: nn.Module, targets: torch.Tensor, num_classes: int) -> tuple[float | None, str]:
    """(the loss of all-zero logits on `targets`, how it was derived), or (None, why skipped)."""
    if loss_name in SKIPPED:
        return None, SKIPPED[loss_name]
    with torch.no_grad():
        zeros = torch.zeros(len(targets), num_classes, device=targets.device)
        value = float(loss_fn(zeros, targets))
    if loss_name in ("cross_entropy", "nll"):
        return value, f"ln K = ln {num_classes} = {math.log(num_classes):.3f} (near-uniform logits)"
    return value, f"{loss_name} of near-uniform (zero) logits on this batch"


def initial_loss_problem(loss: float, expected: float | None) -> Problem | None:
    if expected is None:
        return None
    if math.isfinite(loss) and (loss <= LOSS_FACTOR * expected or loss - expected <= LOSS_MARGIN):
        return None
    return (f"initial loss {loss:.4g} is far above its expected {expected:.4g} for near-uniform logits "
            f"(x{loss / expected:.3g}): the init makes the network confidently wrong before any step",
            {"initial_loss": loss, "expected": expected})


class LayerScales(LayerHooks):
    """The std of each parameterized leaf layer's output on the next forward pass (armed at once)."""

    def __init__(self, model: nn.Module):
        super().__init__({n: m for n, m in model.named_modules()
                          if n and not list(m.children()) and any(True for _ in m.parameters(recurse=False))})
        self.armed = True

    def statistic(self, name: str, module: nn.Module, output) -> torch.Tensor | None:
        if name in self.values or not isinstance(output, torch.Tensor) or not output.is_floating_point():
            return None  # the first forward only (LBFGS evaluates several per step)
        out = output.detach().float()
        return (out.std() if out.numel() > 1 else out.abs()).reshape(1)


def exploding_activations(scales: dict[str, float], input_std: float, limit: float) -> Problem | None:
    """The first layer whose output std exceeds `limit` times the input's (or is not finite)."""
    reference = max(input_std, 1e-3)
    for name, std in scales.items():
        if not math.isfinite(std) or std > limit * reference:
            rounded = {n: float(f"{v:.3g}") for n, v in scales.items()}
            return (f"the forward pass explodes at init: {name} outputs std {std:.3g} on the first batch "
                    f"(inputs {input_std:.3g}; limit {limit:g}x)", {"layer": name, "output_std": rounded})
    return None


def identical_inputs(x: torch.Tensor) -> Problem | None:
    """Every sample of the batch is the same input: the images never reach the model."""
    flat = x.detach().float().reshape(len(x), -1)
    if len(flat) < 2:
        return None
    spread = float(flat.std(0).max())
    if spread > SAME_INPUT_STD:
        return None
    return (f"all {len(flat)} inputs of the first batch are identical (largest per-pixel spread across the batch "
            f"{spread:.2g}): the images do not reach the model", {"spread": spread, "batch": len(flat)})


def input_stats(x: torch.Tensor) -> dict[str, Any]:
    flat = x.detach().float().flatten(0, -4).transpose(0, 1).reshape(x.shape[-3], -1)
    return {"shape": list(x.shape), "mean": [round(v, 4) for v in flat.mean(1).tolist()],
            "std": [round(v, 4) for v in flat.std(1).tolist()], "min": float(x.min()), "max": float(x.max())}


def label_histogram(targets: torch.Tensor, num_classes: int) -> list[int]:
    ids = targets if targets.dim() == 1 else targets.argmax(1)
    return torch.bincount(ids.clamp(0, num_classes - 1), minlength=num_classes).tolist()


class Step0:
    """Armed at fit start (hooks on the layers); `check` on the first batch's `BatchStep`."""

    def __init__(self, ctx, cfg):
        from trainlib.losses import build_loss

        self.cfg = cfg
        self.loss_name = ctx.config.loss["name"]
        self.loss_fn = build_loss(ctx.config.loss, ctx.data.num_classes).to(ctx.device)
        self.num_classes = ctx.data.num_classes
        self.train_labels = ctx.data.train.labels
        self.scales = LayerScales(ctx.model)

    def check(self, step, recorder) -> None:
        scales = self.scales.take()
        x = step.inputs.flatten(0, 1) if step.inputs.dim() == 5 else step.inputs
        loss = float(step.loss)
        expected, how = expected_loss(self.loss_name, self.loss_fn, step.targets, self.num_classes)
        stats = input_stats(x)
        input_std = float(x.detach().float().std())
        recorder.extra["step0"] = {
            "loss": self.loss_name, "initial_loss": loss, "expected_loss": expected, "expected_how": how,
            "num_classes": self.num_classes, "inputs": stats,
            "output_std": {n: float(f"{v:.4g}") for n, v in scales.items()},
            "batch_labels": label_histogram(step.targets, self.num_classes),
            "train_labels": label_histogram(self.train_labels, self.num_classes)}
        for check, problem in (("identical_inputs", identical_inputs(x)),
                               ("initial_loss", initial_loss_problem(loss, expected)),
                               ("exploding_activations", exploding_activations(scales, input_std,
                                                                               self.cfg.max_activation_std))):
            if problem is not None:
                recorder.report(check, 0, problem[0], problem[1], step.index)
        recorder.save()
