"""`train.*` options through real runs: EMA, early stop, time budget, fp16 resume, bf16 + channels_last."""
from __future__ import annotations

import math

import pytest
import torch

from tests.resumed_runs import QUIET, whole_and_resumed
from trainlib.checkpoint import BEST, LAST, load_safely
from trainlib.config import validate
from trainlib.engine import evaluate
from trainlib.errors import ConfigError
from trainlib.models import build_model
from trainlib.observers import EpochObserver
from trainlib.run import build_parts, run
from trainlib.stopping import EarlyStopping
from trainlib.tags import STOP_REASON

FAKE = {"data": {"name": "fake", "num_samples": 80, "num_classes": 4, "image_size": 32}, "batch_size": 8,
        "device": "cpu", "visuals": {"enabled": False}}


def local(tmp_path, **config) -> dict:
    return {**FAKE, "output": {"dir": str(tmp_path)}, "tracking": {"mlflow": False, "tensorboard": False}, **config}


def only_run_dir(tmp_path):
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    return run_dir


def test_ema_weights_are_what_is_tested_and_checkpointed(tmp_path):
    final = run(local(tmp_path, epochs=2, train={"ema": 0.9}), **QUIET)
    state = load_safely(only_run_dir(tmp_path) / "checkpoints" / LAST)
    assert any(not torch.equal(state["model"][k], state["raw_model"][k]) for k in state["model"])
    cfg = validate(state["config"])
    parts = build_parts(cfg)  # the same data and loaders as the run
    for weights, expected in ((state["model"], True), (state["raw_model"], False)):
        parts.model.load_state_dict(weights)
        test = evaluate(parts.model, parts.loaders["test"], parts.loss_fn, parts.device)
        assert (test.loss == pytest.approx(final["test/loss"], rel=1e-6)) is expected


def test_early_stop_ends_the_run_finished_at_the_epoch_patience_allows(run_config, client):
    # lr so small that valid/acc never changes: epoch 1 sets the best, 2 and 3 fail to beat it
    cfg = run_config(**FAKE, epochs=10, optimizer={"name": "sgd", "lr": 1e-12},
                     train={"early_stop": {"metric": "valid/acc", "patience": 2}})
    epochs = []
    final = run(cfg, observers=[EpochObserver(lambda report: epochs.append(report.epoch))], **QUIET)
    (stopped,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert epochs == [1, 2, 3]
    assert stopped.info.status == "FINISHED"
    assert stopped.data.tags[STOP_REASON].startswith("early_stop: valid/acc did not improve")
    assert "test/acc" in final and [m.step for m in client.get_metric_history(stopped.info.run_id, "valid/acc")] == [1, 2, 3]


@pytest.mark.parametrize("mode, values, stop_at", [
    ("min", [1.0, 0.9, 0.95, 0.91, 0.92], 5),  # 0.9 at epoch 2, then 3 epochs without a lower value
    ("max", [0.5, 0.6, 0.6, 0.6005, 0.9], None),  # min_delta 0.001: 0.6005 is no improvement, 0.9 is
])
def test_early_stopping_counts_epochs_without_improvement(mode, values, stop_at):
    from trainlib.config import EarlyStopConfig

    stopper = EarlyStopping(EarlyStopConfig(metric="valid/loss", mode=mode, patience=3, min_delta=0.001))
    reasons = [stopper.update(epoch, {"valid/loss": v}) for epoch, v in enumerate(values, 1)]
    stopped = [epoch for epoch, reason in enumerate(reasons, 1) if reason]
    assert stopped == ([stop_at] if stop_at else [])


def test_max_minutes_ends_the_run_after_the_batch_that_spends_it(run_config, client):
    cfg = run_config(**FAKE, epochs=5, train={"max_minutes": 1e-6})
    epochs = []
    final = run(cfg, observers=[EpochObserver(lambda report: epochs.append(report.epoch))], **QUIET)
    (stopped,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert epochs == [1]
    assert stopped.info.status == "FINISHED" and "test/acc" in final
    assert stopped.data.tags[STOP_REASON].startswith("max_minutes: the time budget of 1e-06 min is spent")


def test_a_resumed_fp16_ema_accumulating_run_continues_identically(tmp_path):
    config = local(tmp_path, epochs=3, train={"precision": "fp16", "ema": 0.8, "accumulate": 2},
                   optimizer={"name": "sgd", "lr": 0.05, "clip_grad_norm": 5.0})
    whole, resumed, _ = whole_and_resumed(config)
    assert resumed == whole
    states = [load_safely(r / "checkpoints" / LAST) for r in sorted(p for p in tmp_path.iterdir() if p.is_dir())]
    for key in ("model", "raw_model"):
        assert all(torch.equal(states[0][key][k], states[1][key][k]) for k in states[0][key])
    assert states[0]["scaler"] == states[1]["scaler"] and states[0]["scaler"]["scale"] > 0


@pytest.mark.parametrize("bad, message", [
    ({"train": {"precision": "fp8"}}, "train.precision"),
    ({"train": {"ema": 1.0}}, "train.ema"),
    ({"train": {"accumulate": 0}}, "train.accumulate"),
    ({"train": {"compile": "fastest"}}, "train.compile"),
    ({"train": {"early_stop": {"metric": "valid/f1"}}}, "train.early_stop.metric"),
    ({"optimizer": {"name": "sgd", "clip_grad_norm": -1}}, "optimizer.clip_grad_norm"),
    ({"train": {"precision": "fp16"}, "optimizer": "lbfgs"}, "fp16 needs a gradient scaler"),
])
def test_bad_training_options_are_one_line_config_errors(bad, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")) as err:
        validate(bad)
    assert "\n" not in str(err.value)


def test_switch_shorthands():
    cfg = validate({"train": {"compile": True, "early_stop": True}})
    assert cfg.train.compile == "default" and cfg.train.early_stop.metric == "valid/loss"
    assert validate({"train": {"early_stop": False}}).train.early_stop is None


def test_compiled_training_checkpoints_plain_state_dict_keys(tmp_path):
    """torch.compile wraps the training model only: checkpoints load into an uncompiled model."""
    cfg = validate(local(tmp_path, epochs=1, train={"compile": "default"}))
    parts = build_parts(cfg)
    assert type(parts.train_model.compiled).__name__ == "OptimizedModule"
    assert parts.train_model.model is parts.model and parts.train_model.compiled._orig_mod is parts.model
    assert not any(k.startswith("_orig_mod.") for k in parts.eval_model.state_dict())


@pytest.mark.slow
def test_bf16_channels_last_trains_digits_to_90_percent(tmp_path):
    final = run(local(tmp_path, data={"name": "digits"}, model="net", init="default", batch_size=64, epochs=12,
                      optimizer={"name": "adam", "lr": 3e-3}, scheduler="cosine", transforms={"train": ["normalize"]},
                      train={"precision": "bf16", "channels_last": True}), **QUIET)
    assert final["test/acc"] >= 0.90, final
    state = load_safely(only_run_dir(tmp_path) / "checkpoints" / BEST)
    model = build_model({"name": "net"}, 10, 3)
    model.load_state_dict(state["model"])  # fp32 weights, plain keys
    assert all(t.dtype == torch.float32 for t in state["model"].values())
    assert not math.isnan(final["test/loss"])


@pytest.mark.slow
def test_fp16_with_the_scaler_trains_digits(tmp_path):
    final = run(local(tmp_path, data={"name": "digits"}, model="net", init="default", batch_size=64, epochs=6,
                      optimizer={"name": "adam", "lr": 3e-3}, scheduler="cosine", transforms={"train": ["normalize"]},
                      train={"precision": "fp16"}), **QUIET)
    assert final["test/acc"] >= 0.8, final
