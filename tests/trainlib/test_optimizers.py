"""Every optimizer: real steps through the engine's closure step; parameter groups; refusals; trains Net (slow)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.trainlib.catalog_runs import ACC_BAR, OPTIMIZER_PARAMS, optimizer_spec, short_run_config, train
from trainlib.config import validate
from trainlib.engine import optimizer_step
from trainlib.errors import ConfigError
from trainlib.optimizers import OPTIMIZERS, build_optimizer, list_optimizers

ACCEPTED = [e.name for e in OPTIMIZERS.entries() if not e.refused]
REFUSED = [e.name for e in OPTIMIZERS.entries() if e.refused]


def spec(name: str, **params) -> dict:
    return {"name": name, **OPTIMIZERS.validate(name, {**OPTIMIZER_PARAMS.get(name, {}), **params})}


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))


@pytest.mark.parametrize("name", ACCEPTED)
def test_optimizer_steps_lower_the_loss(name):
    model = small_model()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 8, generator=gen)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    optimizer = build_optimizer(spec(name), model)
    loss_fn = nn.CrossEntropyLoss()
    losses = [float(optimizer_step(model, loss_fn, optimizer, x, y)[1]) for _ in range(50)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.95 * losses[0], losses


@pytest.mark.parametrize("name", REFUSED)
def test_refused_optimizer_gives_its_reason(name):
    with pytest.raises(ConfigError, match=f"optimizer '{name}' cannot be used here: .*dense gradients"):
        validate({"optimizer": name})


def test_lbfgs_evaluates_the_closure_several_times_per_step():
    model = small_model()
    calls = []

    def loss_fn(logits, y):
        calls.append(1)
        return nn.functional.cross_entropy(logits, y)

    optimizer = build_optimizer(spec("lbfgs", max_iter=5, line_search_fn=None), model)
    optimizer_step(model, loss_fn, optimizer, torch.randn(32, 8), torch.randint(0, 3, (32,)))
    assert len(calls) > 1


def test_no_decay_bias_norm_puts_biases_and_norm_weights_in_a_zero_decay_group():
    model = small_model()
    optimizer = build_optimizer(spec("sgd", weight_decay=1e-3, no_decay_bias_norm=True), model)
    decayed, undecayed = optimizer.param_groups
    assert decayed["weight_decay"] == 1e-3 and undecayed["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(model[0].weight), id(model[3].weight)}
    assert {id(p) for p in undecayed["params"]} == {id(model[0].bias), id(model[1].weight), id(model[1].bias),
                                                     id(model[3].bias)}


def test_lr_multipliers_make_groups_by_longest_prefix():
    model = small_model()
    optimizer = build_optimizer(spec("adam", lr=0.01), model, lr_mults={"3": 10.0, "3.bias": 0.5})
    lrs = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert lrs[id(model[0].weight)] == 0.01
    assert lrs[id(model[3].weight)] == pytest.approx(0.1)
    assert lrs[id(model[3].bias)] == pytest.approx(0.005)


def test_unknown_lr_multiplier_prefix_is_an_error():
    with pytest.raises(ConfigError, match="prefix 'head' matches no parameter"):
        build_optimizer(spec("sgd"), small_model(), lr_mults={"head": 10.0})


def test_lbfgs_refuses_several_parameter_groups():
    with pytest.raises(ConfigError, match="lbfgs takes one parameter group"):
        build_optimizer(spec("lbfgs", no_decay_bias_norm=True), small_model())


def test_frozen_parameters_are_left_out():
    model = small_model()
    model[0].weight.requires_grad_(False)
    optimizer = build_optimizer(spec("sgd"), model)
    assert id(model[0].weight) not in {id(p) for g in optimizer.param_groups for p in g["params"]}


def test_unknown_optimizer_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown optimizer 'adamz'; valid: " + ", ".join(list_optimizers())):
        validate({"optimizer": "adamz"})


@pytest.mark.slow
@pytest.mark.parametrize("name", ACCEPTED)
def test_every_optimizer_trains_net_on_digits(name, tmp_path):
    result = train(short_run_config(tmp_path, optimizer=optimizer_spec(name)))
    assert result["train_losses"][-1] < result["train_losses"][0]
    assert result["valid/best_acc"] >= ACC_BAR, result


# --- the tutorial's optimizer options, step by step (seed 3.2-3.3) ------------------------------

def linear_steps(name: str, steps: list[float], **params) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
    """Weights after each engine step on a loss whose gradient is `scale` x ones (one scale per step)."""
    model = nn.Linear(4, 1, bias=False)
    nn.init.zeros_(model.weight)
    optimizer = build_optimizer(spec(name, weight_decay=0.0, **params), model)
    x = torch.ones(1, 4)
    weights = []
    for scale in steps:
        optimizer_step(model, lambda logits, y, s=scale: s * logits.sum(), optimizer, x, torch.zeros(1))
        weights.append(model.weight.detach().clone())
    return weights, optimizer


@pytest.mark.parametrize("dampening", [0.0, 0.1, 0.5])
def test_sgd_dampening_scales_the_new_gradient_in_the_momentum_buffer(dampening):
    lr, momentum = 0.1, 0.9
    (w1, w2, w3), _ = linear_steps("sgd", [1.0, 1.0, 1.0], lr=lr, momentum=momentum, dampening=dampening)
    buf2 = momentum * 1.0 + (1 - dampening) * 1.0  # the first step takes the gradient as the buffer, undampened
    buf3 = momentum * buf2 + (1 - dampening) * 1.0
    assert torch.allclose(w1, torch.full((1, 4), -lr))
    assert torch.allclose(w2 - w1, torch.full((1, 4), -lr * buf2))
    assert torch.allclose(w3 - w2, torch.full((1, 4), -lr * buf3))


def test_adam_amsgrad_keeps_the_largest_second_moment():
    """A large gradient then small ones: AMSGrad divides by the running maximum of v, so it steps less."""
    gradients = [10.0, 0.1, 0.1, 0.1]
    plain, _ = linear_steps("adam", gradients, lr=0.01, amsgrad=False)
    ams, optimizer = linear_steps("adam", gradients, lr=0.01, amsgrad=True)
    assert torch.equal(plain[0], ams[0])  # v's maximum is v itself at the first step
    assert (ams[-1] - ams[0]).abs().sum() < (plain[-1] - plain[0]).abs().sum()
    (state,) = optimizer.state.values()
    assert torch.allclose(state["max_exp_avg_sq"], torch.full((1, 4), (1 - 0.999) * 100.0))  # from the first step


def test_each_step_starts_from_zeroed_gradients():
    """zero_grad before every backward: the gradient of a step is that batch's alone, never the sum so far."""
    model = nn.Linear(4, 1, bias=False)
    optimizer = build_optimizer(spec("sgd", lr=0.1, momentum=0.0), model)  # a linear loss: the same gradient each step
    x = torch.ones(1, 4)
    for _ in range(3):
        optimizer_step(model, lambda logits, y: 2.0 * logits.sum(), optimizer, x, torch.zeros(1))
        assert torch.equal(model.weight.grad, torch.full((1, 4), 2.0))
    optimizer.zero_grad()
    assert model.weight.grad is None  # set_to_none, torch's default
