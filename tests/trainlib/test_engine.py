"""The training step's options: accumulation, clipping, autocast; and no host sync in the batch loop."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from trainlib.ema import ModelEma
from trainlib.engine import StepOptions, accumulated_step, train_one_epoch
from trainlib.models import build_model
from trainlib.optimizers import OPTIMIZERS, build_optimizer
from trainlib.precision import Execution
from trainlib.schedulers import SCHEDULERS, build_scheduler

CPU = torch.device("cpu")


def net() -> nn.Module:
    torch.manual_seed(0)
    return build_model({"name": "net"}, 10, 3)


def batches(count: int, size: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 3, 32, 32, generator=gen), torch.randint(0, 10, (size,), generator=gen))
            for _ in range(count)]


def joined(parts: list[tuple[torch.Tensor, torch.Tensor]], group: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The same samples in batches of `group` consecutive parts."""
    return [(torch.cat([x for x, _ in parts[i:i + group]]), torch.cat([y for _, y in parts[i:i + group]]))
            for i in range(0, len(parts), group)]


def epoch(model: nn.Module, loader, optimizer_name: str = "sgd", **options) -> tuple[nn.Module, object]:
    spec = {"name": optimizer_name, **OPTIMIZERS.validate(optimizer_name, {"lr": 0.05})}
    optimizer = build_optimizer(spec, model)
    schedule = build_scheduler({"name": "constant", **SCHEDULERS.validate("constant", {})}, optimizer, 1, len(loader))
    result = train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer, schedule, CPU, progress=False,
                             options=StepOptions(**options))
    return model, result


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
@pytest.mark.parametrize("count", [6, 5])  # 5: the last step takes the one micro-batch left
def test_accumulated_micro_batches_step_like_one_larger_batch(optimizer, count):
    micro = batches(count, 8)
    accumulated, acc_result = epoch(net(), micro, optimizer, accumulate=2)
    whole, whole_result = epoch(net(), joined(micro, 2), optimizer)
    # equal up to float rounding of the gradient sums (Adam divides a near-zero gradient by its own size:
    # 1e-5 against steps of lr = 0.05)
    for (name, a), b in zip(accumulated.state_dict().items(), whole.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=name)
    assert acc_result.samples == whole_result.samples == count * 8
    assert acc_result.loss == pytest.approx(whole_result.loss, rel=1e-5)
    assert acc_result.acc == whole_result.acc
    single, _ = epoch(net(), micro, optimizer)  # without accumulation: different steps, different weights
    assert not torch.allclose(single.fc1.weight, whole.fc1.weight)


def grads(model: nn.Module) -> list[torch.Tensor]:
    return [p.grad for p in model.parameters() if p.grad is not None]


def step_once(**options) -> nn.Module:
    model = net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the gradients are what we look at
    accumulated_step(model, nn.CrossEntropyLoss(), optimizer, batches(1, 16), StepOptions(**options))
    return model


def test_clip_grad_norm_bounds_the_total_gradient_norm():
    raw = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads(step_once())]))
    clipped = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads(step_once(clip_grad_norm=0.1))]))
    assert raw > 0.2
    assert clipped == pytest.approx(0.1, rel=1e-4)


def test_clip_grad_value_bounds_every_gradient_element():
    raw = max(g.abs().max() for g in grads(step_once()))
    clipped = max(g.abs().max() for g in grads(step_once(clip_grad_value=1e-3)))
    assert raw > 1e-2
    assert clipped == pytest.approx(1e-3)


def test_after_backward_sees_true_scale_gradients_under_fp16_scaling():
    execution = Execution(CPU, "fp16")
    model, seen = net(), []
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    options = StepOptions(execution, execution.scaler())
    accumulated_step(model, nn.CrossEntropyLoss(), optimizer, batches(1, 16), options,
                     after_backward=lambda logits, loss: seen.append(model.fc3.weight.grad.clone()))
    reference = step_once()
    assert options.scaler.get_scale() > 1  # the loss was scaled up for backward ...
    torch.testing.assert_close(seen[0], reference.fc3.weight.grad, rtol=0.05, atol=1e-3)  # ... and unscaled


def test_bf16_autocast_runs_the_forward_in_bf16_and_keeps_the_metrics_fp32():
    model = net()
    logits_dtypes = []
    model.fc3.register_forward_hook(lambda m, i, out: logits_dtypes.append(out.dtype))
    _, result = epoch(model, batches(2, 8), execution=Execution(CPU, "bf16", channels_last=True))
    assert logits_dtypes == [torch.bfloat16] * 2
    assert model.fc3.weight.dtype == torch.float32
    assert isinstance(result.loss, float) and 0 < result.loss < 10


class SyncCounter:
    """Counts calls that copy a tensor's value to the host (a host-device sync on a GPU)."""

    METHODS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.calls: list[str] = []
        for name in self.METHODS:
            original = getattr(torch.Tensor, name)
            monkeypatch.setattr(torch.Tensor, name, self._counting(name, original))

    def _counting(self, name, original):
        def method(tensor, *args, **kwargs):
            self.calls.append(name)
            return original(tensor, *args, **kwargs)
        return method


@pytest.mark.parametrize("options", [
    {},
    {"precision": "bf16", "channels_last": True, "accumulate": 2, "clip_grad_norm": 1.0, "clip_grad_value": 5.0,
     "ema": 0.9},
    {"precision": "fp16", "fused": True, "clip_grad_norm": 1.0},  # a fused optimizer steps with the scaler on device
], ids=["fp32", "bf16-all-options", "fp16-fused"])
def test_the_batch_loop_reads_nothing_back_to_the_host(monkeypatch, options):
    """The epoch reads its loss and accuracy sums once at the end, however many batches it has
    (torch.cuda.set_sync_debug_mode checks the same on a GPU: test_no_sync_on_cuda)."""
    options = dict(options)
    counts = []
    for count in (2, 6):
        model = net()
        execution = Execution(CPU, options.get("precision", "fp32"), options.get("channels_last", False))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, fused=options.get("fused"))
        schedule = build_scheduler({"name": "cosine", **SCHEDULERS.validate("cosine", {})}, optimizer, 1, count)
        step = StepOptions(execution, execution.scaler(), options.get("clip_grad_norm"), options.get("clip_grad_value"),
                           options.get("accumulate", 1), ModelEma(model, options["ema"]) if "ema" in options else None)
        loader = batches(count, 4)
        with monkeypatch.context() as patch:
            counter = SyncCounter(patch)
            train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer, schedule, CPU, progress=False,
                            options=step)
        counts.append(len(counter.calls))
    assert counts[0] == counts[1], counts


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_no_sync_on_cuda(precision):
    device = torch.device("cuda")
    model = net().to(device, memory_format=torch.channels_last)
    optimizer = build_optimizer({"name": "sgd", **OPTIMIZERS.validate("sgd", {})}, model)  # fused on CUDA
    schedule = build_scheduler({"name": "cosine", **SCHEDULERS.validate("cosine", {})}, optimizer, 1, 6)
    execution = Execution(device, precision, channels_last=True)
    step = StepOptions(execution, execution.scaler(), clip_grad_norm=1.0, accumulate=2, ema=ModelEma(model, 0.99))
    loader = [(x.to(device), y.to(device)) for x, y in batches(6, 32)]
    train_one_epoch(model, loader[:2], nn.CrossEntropyLoss(), optimizer, schedule, device, progress=False,
                    options=step)  # warm-up: lazy init may sync once
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step_losses = [accumulated_step(model, nn.CrossEntropyLoss(), optimizer, loader[i:i + 2], step)
                       for i in range(0, 6, 2)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(step_losses) == 3


def test_ema_follows_the_weights_by_its_decay():
    model = net()
    ema = ModelEma(model, decay=0.75)
    before = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update()
    for name, value in ema.state_dict().items():
        torch.testing.assert_close(value, 0.75 * before[name] + 0.25 * model.state_dict()[name])
    assert not any(p.requires_grad for p in ema.module.parameters())


def plain_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer) -> None:
    """A hand-written loop doing the epoch's work: step, and the loss and accuracy summed on the device."""
    loss_fn, total_loss, correct = nn.CrossEntropyLoss(), torch.zeros(()), torch.zeros((), dtype=torch.long)
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        (loss := loss_fn(logits, y)).backward()
        optimizer.step()
        total_loss += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
    float(total_loss), float(correct)


def ops_per_step(fn, steps: int) -> float:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(event.count for event in prof.key_averages() if event.key.startswith("aten::")) / steps


def test_the_step_dispatches_hardly_more_tensor_ops_than_a_plain_loop():
    """Each tensor op costs a few microseconds of host time, a step's budget over a plain loop is 60
    (bench/step_overhead.py): a `.float()`, `.to()` or product with a Python number per step shows here."""
    loader, model = batches(6, 8), net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    schedule = build_scheduler({"name": "cosine", **SCHEDULERS.validate("cosine", {})}, optimizer, 1, len(loader))
    execution = Execution(CPU)
    step = StepOptions(execution, execution.scaler())
    plain = ops_per_step(lambda: plain_epoch(model, loader, optimizer), len(loader))
    ours = ops_per_step(lambda: train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer, schedule, CPU,
                                                progress=False, options=step), len(loader))
    assert ours <= plain + 4, (ours, plain)
