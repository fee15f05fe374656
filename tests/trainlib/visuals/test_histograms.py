"""The batched histograms equal one torch.histc per tensor, over its finite values."""
from __future__ import annotations

import pytest
import torch

from trainlib.visuals.histograms import BINS, histograms

TENSORS = {
    "normal": torch.randn(100, 50, generator=torch.Generator().manual_seed(0)),
    "constant (a zero init)": torch.zeros(10),
    "with NaN and Inf": torch.tensor([1.0, float("nan"), 3.0, float("inf"), -2.0]),
    "integers": torch.arange(7.0).reshape(1, 7),
}


@pytest.mark.parametrize("name", sorted(TENSORS))
def test_histogram_matches_histc_on_the_finite_values(name):
    tensor = TENSORS[name]
    (h,) = histograms([tensor])
    (again,) = histograms([torch.ones(3), tensor, torch.randn(4, 4)])[1:2]  # neighbours change nothing
    assert again == h
    values = tensor[tensor.isfinite()]
    low, high = float(values.min()), float(values.max())
    edges = (low - 0.5, high + 0.5) if low == high else (low, high)
    assert (h.min, h.max, h.num) == (low, high, values.numel())
    assert h.sum == pytest.approx(float(values.sum())) and h.sum_squares == pytest.approx(float(values.dot(values)))
    assert h.counts == torch.histc(values, BINS, *edges).tolist()
    assert h.limits == pytest.approx(torch.linspace(*edges, BINS + 1)[1:].tolist(), abs=1e-6)


def test_tensors_without_finite_values_get_no_histogram():
    assert histograms([torch.tensor([float("nan")]), torch.empty(0), torch.ones(2)])[:2] == [None, None]
