"""Every loss: a scalar with gradients that prefers the right class; trains Net on digits (slow)."""
from __future__ import annotations

import pytest
import torch

from tests.trainlib.catalog_runs import ACC_BAR, short_run_config, train
from trainlib.config import validate
from trainlib.errors import ConfigError
from trainlib.config import accepts_soft_targets
from trainlib.losses import LOSSES, build_loss, list_losses

K = 10


def make(name: str, **params) -> torch.nn.Module:
    return build_loss({"name": name, **LOSSES.validate(name, params)}, K)


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(16, K, generator=gen), torch.randint(0, K, (16,), generator=gen)


@pytest.mark.parametrize("name", list_losses())
def test_loss_is_a_differentiable_scalar(name, batch):
    logits, target = batch
    logits.requires_grad_(True)
    loss = make(name)(logits, target)
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("name", list_losses())
def test_loss_prefers_the_true_class(name, batch):
    """The adapter's formulation: confident logits on the true class cost less than on a wrong one."""
    _, target = batch
    right = 5.0 * torch.nn.functional.one_hot(target, K).float()
    wrong = 5.0 * torch.nn.functional.one_hot((target + 1) % K, K).float()
    loss = make(name)
    assert loss(right, target) < loss(wrong, target)


@pytest.mark.parametrize("name", [n for n in list_losses() if accepts_soft_targets(n)])
def test_soft_target_losses_take_class_probabilities(name, batch):
    logits, target = batch
    probs = torch.nn.functional.one_hot(target, K).float()
    loss = make(name)
    assert torch.allclose(loss(logits, probs), loss(logits, target), atol=1e-5)
    mixed = 0.7 * probs + 0.3 * probs.roll(1, 0)
    assert torch.isfinite(loss(logits, mixed))


def test_label_smoothing_and_class_weights_change_cross_entropy(batch):
    logits, target = batch
    plain = make("cross_entropy")(logits, target)
    assert make("cross_entropy", label_smoothing=0.2)(logits, target) != plain
    weights = [1.0] * K
    weights[int(target[0])] = 5.0
    assert make("cross_entropy", class_weights=weights)(logits, target) != plain


@pytest.mark.parametrize("name", ["cross_entropy", "nll"])
def test_ignore_index_leaves_that_class_out_of_the_loss(name, batch):
    logits, target = batch
    ignored = int(target[0])
    kept = target != ignored
    assert make(name, ignore_index=ignored)(logits, target) == pytest.approx(float(make(name)(logits[kept], target[kept])))
    assert make(name)(logits, target) == make(name, ignore_index=-100)(logits, target)  # torch's default: none
    logits = logits.clone().requires_grad_(True)
    make(name, ignore_index=ignored)(logits, target).backward()
    assert logits.grad[~kept].abs().sum() == 0 and logits.grad[kept].abs().sum() > 0


def test_class_weights_must_match_the_classes():
    with pytest.raises(ConfigError, match="3 values but the data has 10 classes"):
        make("cross_entropy", class_weights=[1.0, 2.0, 3.0])


@pytest.mark.parametrize("params, message", [
    ({"label_smoothing": 1.5}, r"bad value 1.5 for 'loss.label_smoothing' \(float in \[0, 1\]\)"),
    ({"label_smoothing": "lots"}, "bad value 'lots' for 'loss.label_smoothing'"),
    ({"smoothing": 0.1}, "unknown parameter 'loss.smoothing' for loss 'cross_entropy'; valid: label_smoothing"),
])
def test_bad_loss_parameters_are_named(params, message):
    with pytest.raises(ConfigError, match=message):
        validate({"loss": {"name": "cross_entropy", **params}})


@pytest.mark.parametrize("name", [n for n in list_losses() if not accepts_soft_targets(n)])
def test_mixup_is_refused_with_class_id_only_losses(name):
    with pytest.raises(ConfigError, match=f"loss '{name}' cannot take"):
        validate({"loss": name, "transforms": {"batch": ["mixup"]}})


@pytest.mark.slow
@pytest.mark.parametrize("name", list_losses())
def test_every_loss_trains_net_on_digits(name, tmp_path):
    result = train(short_run_config(tmp_path, loss=name))
    assert result["valid/best_acc"] >= ACC_BAR, result
    assert result["train_losses"][-1] < result["train_losses"][0]
