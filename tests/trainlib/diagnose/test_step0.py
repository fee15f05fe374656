"""The step-0 checks and the verdict's decision table on their own (fast, no training)."""
from __future__ import annotations

import math

import pytest
import torch

from trainlib.live_checks import step0
from trainlib.live_checks.catalog import DATA, MODEL, OPTIM
from trainlib.live_checks.findings import Finding
from trainlib.diagnose.probes import ProbeResult
from trainlib.diagnose.verdict import ambiguity, decide
from trainlib.losses import build_loss, list_losses
from trainlib.models import Net

K = 10


def targets(n: int = 64) -> torch.Tensor:
    return torch.arange(n) % K


@pytest.mark.parametrize("name", list_losses())
def test_every_loss_has_an_expectation_that_a_blown_up_init_exceeds_or_a_reason(name):
    loss_fn = build_loss({"name": name}, K)
    expected, how = step0.expected_loss(name, loss_fn, targets(), K)
    assert how
    if expected is None:
        assert name in step0.SKIPPED
        return
    torch.manual_seed(0)
    small, huge = torch.randn(64, K) * 0.01, torch.randn(64, K) * 100
    assert step0.initial_loss_problem(float(loss_fn(small, targets())), expected) is None
    problem = step0.initial_loss_problem(float(loss_fn(huge, targets())), expected)
    assert problem is not None and "far above" in problem[0], name


def test_cross_entropy_expects_ln_k_with_or_without_label_smoothing():
    for spec in ({"name": "cross_entropy"}, {"name": "cross_entropy", "label_smoothing": 0.1}, {"name": "nll"}):
        expected, how = step0.expected_loss(spec["name"], build_loss(spec, K), targets(), K)
        assert expected == pytest.approx(math.log(K), rel=1e-5) and "ln K" in how
    bce, _ = step0.expected_loss("bce_with_logits", build_loss({"name": "bce_with_logits"}, K), targets(), K)
    assert bce == pytest.approx(math.log(2), rel=1e-5)


def test_a_nan_initial_loss_is_far_above():
    assert step0.initial_loss_problem(math.nan, math.log(K)) is not None


def test_layer_scales_find_the_layer_where_the_forward_pass_explodes():
    torch.manual_seed(0)
    model, x = Net(K, 3), torch.randn(8, 3, 32, 32)
    scales = step0.LayerScales(model)
    model(x)
    healthy = scales.take()
    assert list(healthy) == ["conv1", "conv2", "fc1", "fc2", "fc3"] and not scales.handles
    assert step0.exploding_activations(healthy, 1.0, 100.0) is None
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1)
    scales = step0.LayerScales(model)
    model(x)
    message, evidence = step0.exploding_activations(scales.take(), 1.0, 100.0)
    assert "explodes" in message and evidence["layer"] in ("conv2", "fc1", "fc2")


def test_identical_inputs_and_label_histogram():
    assert step0.identical_inputs(torch.randn(16, 3, 8, 8)) is None
    message, evidence = step0.identical_inputs(torch.full((16, 3, 8, 8), -0.4))
    assert "identical" in message and evidence["batch"] == 16
    assert step0.identical_inputs(torch.zeros(1, 3, 8, 8)) is None  # one sample says nothing
    assert step0.label_histogram(torch.tensor([0, 2, 2]), 4) == [1, 0, 2, 0]
    assert step0.label_histogram(torch.eye(3)[[1, 1]], 3) == [0, 2, 0]  # soft targets (mixup)


def finding(check: str, epoch: int = 1) -> Finding:
    return Finding(check, epoch, f"{check} seen", {})


def probe(name: str, outcome: str) -> ProbeResult:
    return ProbeResult(name, outcome, f"{name}: {outcome}", {}, 1.0)


def probes(overfit="fits", shuffle="signal", zero="signal", lr="lr_ok") -> list[ProbeResult]:
    return [probe("overfit_one_batch", overfit), probe("label_shuffle", shuffle), probe("zero_inputs", zero),
            probe("lr_probe", lr)]


@pytest.mark.parametrize("results, culprit, decider", [
    (probes(overfit="optimizer_cannot_fit", lr="lr_too_low"), OPTIM, "lr_probe"),
    (probes(overfit="optimizer_cannot_fit", lr="nothing_to_learn"), OPTIM, "overfit_one_batch"),
    (probes(overfit="model_cannot_fit", shuffle="no_signal", zero="no_signal"), MODEL, "overfit_one_batch"),
    (probes(shuffle="no_signal", zero="no_signal"), DATA, "label_shuffle"),
    (probes(zero="no_signal"), DATA, "zero_inputs"),
])
def test_probes_decide_an_ambiguous_run(results, culprit, decider):
    why = ambiguity([finding("not_decreasing", 4)], [0.1, 0.11], [0.1, 0.11], K)
    assert why and "loss not decreasing" in why
    verdict = decide([finding("not_decreasing", 4)], results, why)
    assert (verdict.culprit, verdict.deciding_probe) == (culprit, decider)
    assert verdict.evidence[0].startswith(f"probe {decider}") and verdict.advice


def test_root_causes_decide_before_the_probes_and_what_follows():
    findings = [finding("nan"), finding("divergence"), finding("initial_loss", 0)]
    assert ambiguity(findings, [0.1], [0.1], K) is None
    verdict = decide(findings, probes(overfit="optimizer_cannot_fit"), None)
    assert (verdict.culprit, verdict.deciding_check, verdict.deciding_probe) == (MODEL, "initial_loss", None)


def test_a_run_at_chance_without_warnings_is_ambiguous_and_one_that_learned_is_not():
    assert "chance" in ambiguity([], [0.1, 0.13], [0.09, 0.12], K)
    assert ambiguity([], [0.5, 0.9], [0.5, 0.9], K) is None
    assert ambiguity([], [0.7, 0.94], [0.1, 0.1], K) is None  # fits train; valid lags (e.g. BatchNorm statistics)
    assert ambiguity(None, [0.1], [0.1], K) is None  # no diagnostics recorded
    healthy = decide([], probes(), None)
    assert healthy.culprit is None and "able to learn" in healthy.summary
    undecided = decide([finding("not_decreasing", 4)], probes(), "flat")
    assert undecided.culprit == OPTIM and undecided.deciding_check == "not_decreasing"
    assert undecided.confidence < decide([finding("not_decreasing", 4)], probes(overfit="optimizer_cannot_fit"),
                                         "flat").confidence
