"""The all-classes-at-once PR counts equal tensorboardX's per-class `compute_curve`."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tensorboardX.summary import compute_curve

from trainlib.visuals.pr_curves import THRESHOLDS, pr_counts


@pytest.mark.parametrize("classes", [2, 10])
def test_pr_counts_match_tensorboardx(classes):
    g = torch.Generator().manual_seed(classes)
    probs = torch.rand(300, classes, generator=g).softmax(1)
    probs[0] = torch.eye(classes)[1]  # the edges: a probability of exactly 1 and of 0
    targets = torch.randint(0, classes, (300,), generator=g)
    counts = pr_counts(probs, targets)
    for c in range(classes):
        expected = compute_curve((targets == c).numpy(), probs[:, c].numpy(), num_thresholds=THRESHOLDS)
        got = np.stack([counts[k][c].numpy() for k in ("tp", "fp", "tn", "fn", "precision", "recall")])
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
