"""Every check the doctor knows: which part of training it blames, how strongly, and what to try.

`rank` orders root causes before the symptoms they produce: unnormalized inputs explain a
divergence, a symmetric (constant) init explains dead units and a flat loss; the doctor names
the culprit of the lowest-ranked finding.
"""
from __future__ import annotations

from dataclasses import dataclass

DATA, MODEL, OPTIM = "data", "model", "loss-optimizer"


@dataclass(frozen=True)
class Check:
    name: str
    culprit: str
    rank: int
    title: str
    advice: str


CHECKS: dict[str, Check] = {c.name: c for c in [
    Check("labels", DATA, 0, "labels out of range",
          "fix the label list: class ids must be 0..num_classes-1"),
    Check("inputs_not_normalized", DATA, 1, "inputs not normalized",
          "add `normalize` to the transforms (per-channel mean 0 / std 1)"),
    Check("symmetric_units", MODEL, 2, "symmetric units (all units of a layer identical)",
          "use a random init (e.g. initialize_weights, kaiming/xavier), not a constant"),
    Check("nan", OPTIM, 3, "NaN/Inf in loss or weights",
          "lower the learning rate, clip gradients, check the loss inputs"),
    Check("divergence", OPTIM, 4, "loss diverging",
          "lower the learning rate (try `launch lr-find`)"),
    Check("exploding_gradients", OPTIM, 5, "exploding gradients / too large updates",
          "lower the learning rate or clip gradients"),
    Check("vanishing_gradients", MODEL, 6, "vanishing gradients",
          "check the init and activations; add normalization or residual connections"),
    Check("dead_relu", MODEL, 7, "dead ReLUs",
          "lower the learning rate, check the init (biases), or use LeakyReLU"),
    Check("not_decreasing", OPTIM, 8, "loss not decreasing",
          "raise the learning rate (try `launch lr-find`) or train longer"),
    Check("overfitting", DATA, 9, "growing train/valid gap (overfitting)",
          "more data or augmentation, weight decay, a smaller model, or fewer epochs"),
    Check("class_imbalance", DATA, 10, "class imbalance in the train split",
          "rebalance the split, weight the loss per class, or oversample rare classes"),
]}

CHECK_NAMES = tuple(CHECKS)
