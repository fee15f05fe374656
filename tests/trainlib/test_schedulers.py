"""Every LR schedule: real steps at its interval, the documented lr course, warmup on top, lr/step logged."""
from __future__ import annotations

import math

import pytest
import torch

from trainlib.config import resolve
from trainlib.schedulers import LAMBDAS, SCHEDULERS, build_scheduler, list_schedulers

LR, EPOCHS, STEPS = 0.1, 4, 5


def lr_course(name: str, metric: float = 1.0, **params) -> list[list[float]]:
    """lr used by each batch, per epoch, with sgd stepping for real on a tiny model."""
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    schedule = build_scheduler({"name": name, **SCHEDULERS.validate(name, params)}, optimizer, EPOCHS, STEPS)
    course = []
    for _ in range(EPOCHS):
        epoch = []
        for _ in range(STEPS):
            epoch.append(optimizer.param_groups[0]["lr"])
            model(torch.ones(1, 2)).sum().backward()
            optimizer.step()
            schedule.after_batch()
        schedule.after_epoch({"valid/loss": metric, "valid/acc": 0.5})
        course.append(epoch)
    return course


def per_epoch(course: list[list[float]]) -> list[float]:
    assert all(len(set(epoch)) == 1 for epoch in course), "an epoch schedule changed the lr within an epoch"
    return [epoch[0] for epoch in course]


def flat(course: list[list[float]]) -> list[float]:
    return [lr for epoch in course for lr in epoch]


def decreasing(values: list[float]) -> bool:
    return all(b <= a + 1e-12 for a, b in zip(values, values[1:])) and values[-1] < values[0]


# name -> (params, check on the lr course); every registered schedule must be documented here
DOCUMENTED = {
    "constant": ({}, lambda c: per_epoch(c) == [LR] * EPOCHS),
    "step": ({"step_size": 2, "gamma": 0.5}, lambda c: per_epoch(c) == pytest.approx([LR, LR, LR / 2, LR / 2])),
    "multistep": ({"milestones": [1, 3], "gamma": 0.1},
                  lambda c: per_epoch(c) == pytest.approx([LR, LR / 10, LR / 10, LR / 100])),
    "exponential": ({"gamma": 0.5}, lambda c: per_epoch(c) == pytest.approx([LR * 0.5 ** e for e in range(EPOCHS)])),
    "cosine": ({}, lambda c: per_epoch(c) == pytest.approx(
        [LR * (1 + math.cos(math.pi * e / EPOCHS)) / 2 for e in range(EPOCHS)])),
    # a metric that never improves halves the lr after every epoch but the first
    "plateau": ({"patience": 0, "factor": 0.5},
                lambda c: per_epoch(c) == pytest.approx([LR, LR, LR / 2, LR / 4])),
    "lambda": ({"fn": "linear_decay"},
               lambda c: per_epoch(c) == pytest.approx([LR * (1 - e / EPOCHS) for e in range(EPOCHS)])),
    "onecycle": ({}, lambda c: max(flat(c)) == pytest.approx(LR, rel=0.05) and flat(c)[0] == pytest.approx(LR / 25)
                 and flat(c)[-1] < LR / 100 and decreasing(flat(c)[flat(c).index(max(flat(c))):])),
    "cosine_restarts": ({"t_0": 2.0}, lambda c: flat(c)[0] == LR and decreasing(flat(c)[:2 * STEPS])
                        and flat(c)[2 * STEPS] == pytest.approx(LR)),
    "cyclic": ({"half_cycle_epochs": 1.0, "base_fraction": 0.1},
               lambda c: flat(c)[0] == pytest.approx(LR / 10) and flat(c)[STEPS] == pytest.approx(LR)
               and flat(c)[2 * STEPS] == pytest.approx(LR / 10)),
    "polynomial": ({"power": 1.0}, lambda c: flat(c) == pytest.approx(
        [LR * (1 - i / (EPOCHS * STEPS)) for i in range(EPOCHS * STEPS)])),
}


def test_every_schedule_is_documented_here():
    assert sorted(DOCUMENTED) == list_schedulers()


@pytest.mark.parametrize("name", list_schedulers())
def test_schedule_follows_its_documented_course(name):
    params, check = DOCUMENTED[name]
    course = lr_course(name, **params)
    assert check(course), course


@pytest.mark.parametrize("name", list_schedulers())
def test_schedule_steps_at_its_interval(name):
    schedule_interval = SCHEDULERS.build({"name": name, **SCHEDULERS.validate(name, {})},
                                         torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR), EPOCHS, STEPS)
    course = lr_course(name, **DOCUMENTED[name][0])
    changes_within_epochs = any(len(set(epoch)) > 1 for epoch in course)
    assert changes_within_epochs == (schedule_interval.interval == "step")


@pytest.mark.parametrize("lam", sorted(LAMBDAS))
def test_named_lambdas(lam):
    course = per_epoch(lr_course("lambda", fn=lam))
    assert course == pytest.approx([LR * LAMBDAS[lam](e, EPOCHS) for e in range(EPOCHS)])


@pytest.mark.parametrize("name", list_schedulers())
def test_warmup_ramps_linearly_then_hands_over(name):
    params, _ = DOCUMENTED[name]
    plain = flat(lr_course(name, **params))
    warm = flat(lr_course(name, warmup_epochs=1.0, warmup_start=0.2, **params))
    factors = [0.2 + 0.8 * i / STEPS for i in range(STEPS)]
    assert warm[:STEPS] == pytest.approx([p * f for p, f in zip(plain, factors)])
    assert warm[STEPS:] == pytest.approx(plain[STEPS:])


def test_warmup_survives_a_schedule_switch():
    cfg = resolve([{"scheduler": {"name": "step", "warmup_epochs": 2}}, {"scheduler": {"name": "cosine"}}])
    assert cfg.scheduler["warmup_epochs"] == 2 and cfg.scheduler["name"] == "cosine"


def test_state_dict_resumes_mid_warmup():
    def make():
        model = torch.nn.Linear(2, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR)
        spec = {"name": "cosine", **SCHEDULERS.validate("cosine", {"warmup_epochs": 1.0})}
        return optimizer, build_scheduler(spec, optimizer, EPOCHS, STEPS)

    optimizer, schedule = make()
    for _ in range(2):
        optimizer.step()
        schedule.after_batch()
    opt2, resumed = make()
    opt2.load_state_dict(optimizer.state_dict())
    resumed.load_state_dict(schedule.state_dict())
    for s, o in ((schedule, optimizer), (resumed, opt2)):
        o.step()
        s.after_batch()
    assert opt2.param_groups[0]["lr"] == pytest.approx(optimizer.param_groups[0]["lr"])
    assert resumed.steps == 3


def test_per_step_lr_is_logged_with_a_global_step(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from trainlib.run import run

    run({"epochs": 2, "batch_size": 256, "scheduler": "onecycle", "transforms": {"train": ["normalize"]},
         "optimizer": {"name": "sgd", "lr": 0.05}, "device": "cpu",
         "tracking": {"mlflow": False, "tensorboard": True}, "output": {"dir": str(tmp_path)}},
        progress=False, echo=lambda line: None)
    events = EventAccumulator(str(next(tmp_path.glob("*/tb")))).Reload()
    steps = [(e.step, e.value) for e in events.Scalars("lr/step")]
    assert [s for s, _ in steps] == list(range(1, 13))  # 1,437 images / 256 = 6 batches x 2 epochs
    lrs = [v for _, v in steps]
    assert max(lrs) == pytest.approx(0.05, rel=0.1) and lrs[-1] < lrs[0]
    assert [e.step for e in events.Scalars("lr")] == [1, 2]
