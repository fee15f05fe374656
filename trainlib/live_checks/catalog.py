"""Every check the doctor knows: which part of training it blames, how strongly, and what to try.

`rank` orders root causes before the symptoms they produce: unnormalized inputs explain a
divergence, a symmetric (constant) init explains dead units and a flat loss, and the step-0
checks (identical inputs, the initial loss, the forward pass at init) come before anything
that happens later in training; the doctor names the culprit of the lowest-ranked finding.
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
    Check("identical_inputs", DATA, 1, "identical inputs (the images never reach the model)",
          "check the dataset / loader / transforms: every sample of a batch is the same input"),
    Check("inputs_not_normalized", DATA, 2, "inputs not normalized",
          "add `normalize` to the transforms (per-channel mean 0 / std 1)"),
    Check("initial_loss", MODEL, 3, "initial loss far above its expected value",
          "use an init that keeps the logits small (e.g. initialize_weights, kaiming/xavier), not a large std"),
    Check("exploding_activations", MODEL, 4, "exploding forward pass at init",
          "use a scaled init (kaiming/xavier: std ~ 1/sqrt(fan_in)) or add normalization layers"),
    Check("symmetric_units", MODEL, 5, "symmetric units (all units of a layer identical)",
          "use a random init (e.g. initialize_weights, kaiming/xavier), not a constant"),
    Check("nan", OPTIM, 6, "NaN/Inf in loss or weights",
          "lower the learning rate, clip gradients, check the loss inputs"),
    Check("divergence", OPTIM, 7, "loss diverging",
          "lower the learning rate (try `launch lr-find`)"),
    Check("exploding_gradients", OPTIM, 8, "exploding gradients / too large updates",
          "lower the learning rate or clip gradients"),
    Check("vanishing_gradients", MODEL, 9, "vanishing gradients",
          "check the init and activations; add normalization or residual connections"),
    Check("dead_relu", MODEL, 10, "dead ReLUs",
          "lower the learning rate, check the init (biases), or use LeakyReLU"),
    Check("not_decreasing", OPTIM, 11, "loss not decreasing",
          "raise the learning rate (try `launch lr-find`) or train longer"),
    Check("overfitting", DATA, 12, "growing train/valid gap (overfitting)",
          "more data or augmentation, weight decay, a smaller model, or fewer epochs"),
    Check("class_imbalance", DATA, 13, "class imbalance in the train split",
          "rebalance the split, weight the loss per class, or oversample rare classes"),
]}

CHECK_NAMES = tuple(CHECKS)
