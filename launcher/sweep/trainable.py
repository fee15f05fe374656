"""One Tune trial = one `trainlib.run`, reporting every epoch (with its checkpoint) to Tune.

A trial keeps one MLflow child run for its whole life: when Tune restores it (a retry after
a failure, a paused HyperBand trial, `launch sweep --resume`) it resumes trainlib from the
checkpoint Tune hands back and continues the same child run, found by its trial id.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from launcher.sweep import tracking
from launcher.sweep.loading import Sweep
from launcher.sweep.schema import Resources


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite: the trial fails (and may be retried)."""


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a sweep shares (sent once to the cluster with the trainable)."""

    sweep: Sweep
    record: tracking.SweepRun


def trainable_for(resources: Resources, context: TrialContext, callbacks: Sequence[Callable] = ()) -> Any:
    """The Tune trainable for trials of this size: one process per trial. DDP trials
    (resources.workers > 1, refused by loading.check_resources for now) will plug in here.

    `callbacks` are extra trainlib epoch callbacks, run before each epoch is reported to Tune."""
    from ray import tune

    fn = tune.with_parameters(train_trial, context=context, callbacks=tuple(callbacks))
    return tune.with_resources(fn, {"cpu": resources.cpu, "gpu": resources.gpu})


def train_trial(sample: dict[str, Any], context: TrialContext, callbacks: Sequence[Callable] = ()) -> None:
    from ray import tune

    from trainlib.run import run

    trial = tune.get_context()
    sweep, record = context.sweep, context.record
    cfg = sweep.trial_config(sample, **{"tracking.run_name": trial.get_trial_name()})
    earlier = record.trial_run(trial.get_trial_id())
    if earlier is not None and earlier.info.status == "FINISHED":  # after Tune's last saved state: tell, not train
        tune.report({**earlier.data.metrics, "epoch": cfg.epochs, "run_id": earlier.info.run_id})
        return
    point = resume_point(tune.get_checkpoint(), earlier, cfg)
    if point is None and earlier is not None:
        record.discard(earlier, "started over: this attempt left no checkpoint")
    attempt = int(earlier.data.tags.get(tracking.ATTEMPT_TAG, "0")) + 1 if earlier else 1
    reporter = Reporter(cfg.epochs)
    final = run(cfg, resume=point, callbacks=[*callbacks, reporter], progress=False,
                tags=trial_tags(record, sweep.active(sample), attempt))
    reporter.finish(final)


def trial_tags(record: tracking.SweepRun, active: dict[str, Any], attempt: int) -> dict[str, str]:
    """A trial's child-run tags (not `launch.sweep`: that marks the parent, which `launch runs --sweep` finds)."""
    import ray
    from ray import tune

    trial = tune.get_context()
    return {tracking.PARENT_TAG: record.parent_run_id, tracking.TRIAL_ID_TAG: trial.get_trial_id(),
            tracking.SAMPLED_TAG: json.dumps(active), tracking.ATTEMPT_TAG: str(attempt),
            "launch.node_ip": ray.util.get_node_ip_address(), "launch.node_id": ray.get_runtime_context().get_node_id(),
            "launch.gpu_ids": json.dumps([str(g) for g in ray.get_gpu_ids()])}


def resume_point(checkpoint, earlier, cfg):
    """Where to continue: Tune's checkpoint, in this trial's own child run and run folder."""
    from trainlib.checkpoint import LAST
    from trainlib.resume import ResumePoint, locate
    from trainlib.tracking.open import RUN_DIR_TAG

    if checkpoint is None or earlier is None:
        return None
    with checkpoint.as_directory() as folder:
        state = locate(str(Path(folder) / LAST), None).state
    adopt_hyperparams(state, cfg.to_dict())
    return ResumePoint(state, earlier.info.run_id, Path(earlier.data.tags[RUN_DIR_TAG]))


LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr", "base_lrs", "_last_lr", "own_lrs")


def adopt_hyperparams(state: dict[str, Any], config: dict[str, Any]) -> None:
    """PBT restores a trial from another trial's checkpoint with perturbed values: put this
    trial's optimizer values into the loaded optimizer state (which would restore the donor's).

    A new lr scales every lr the optimizer and schedule hold, so the schedule's progress and
    per-group multipliers (a finetune head's) carry over; other values are set as given."""
    old, new = state["config"]["optimizer"], config["optimizer"]
    changed = {k: v for k, v in new.items() if k != "name" and old.get(k) != v}
    ratio = changed.pop("lr") / old["lr"] if "lr" in changed else 1.0
    for group in state["optimizer"]["param_groups"]:
        group.update({k: v for k, v in changed.items() if k in group})
    if ratio != 1.0:
        _scale_lrs(state["optimizer"]["param_groups"], ratio)
        _scale_lrs(state["scheduler"], ratio)


def _scale_lrs(node: Any, ratio: float) -> None:
    """Multiply every lr value (LR_KEYS) found in nested dicts and lists, in place."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        if key in LR_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool):
            node[key] = value * ratio
        elif key in LR_KEYS and isinstance(value, list):
            node[key] = [v * ratio for v in value]
        else:
            _scale_lrs(value, ratio)


class Reporter:
    """trainlib callback: each epoch's metrics and checkpoint to Tune.

    The last epoch is held back and sent with the test metrics once the run has finished, so
    a scheduler's stop decision on it cannot cut the test evaluation short."""

    def __init__(self, epochs: int):
        self.epochs = epochs
        self.pending: tuple[dict[str, Any], Path] | None = None

    def __call__(self, report) -> None:
        loss = report.metrics["train/loss"]
        if not math.isfinite(loss):
            raise NonFiniteLoss(f"train loss is {loss} at epoch {report.epoch}")
        metrics = {**report.metrics, "epoch": report.epoch, "run_id": report.run_id}
        if report.epoch < self.epochs:
            send(metrics, report.checkpoint_dir)
        else:
            self.pending = (metrics, report.checkpoint_dir)

    def finish(self, final: dict[str, float]) -> None:
        if self.pending is not None:
            metrics, folder = self.pending
            send({**metrics, **final}, folder)


def send(metrics: dict[str, Any], checkpoint_dir: Path) -> None:
    """ray.tune.report with a checkpoint holding only last.pt (Tune copies it to the sweep's storage)."""
    from ray import tune

    from trainlib.checkpoint import LAST

    with tempfile.TemporaryDirectory(dir=checkpoint_dir.parent, prefix=".tune-") as folder:
        try:
            os.link(checkpoint_dir / LAST, Path(folder) / LAST)
        except OSError:  # another filesystem: copy
            shutil.copy2(checkpoint_dir / LAST, Path(folder) / LAST)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
