"""One Tune trial = one `trainlib.run` (or, with `resources.workers > 1`, one DDP job of
them on Ray Train), reporting every epoch (with its checkpoint) to Tune.

A trial keeps one MLflow child run for its whole life: when Tune restores it (a retry after
a failure, a paused HyperBand trial, `launch sweep --resume`) it resumes trainlib from the
checkpoint Tune (or, for a DDP trial, Ray Train) hands back and continues the same child
run, found by its trial id.
"""
from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from launcher.sweep import tracking
from launcher.sweep.loading import Sweep
from launcher.sweep.schema import Resources
from trainlib import tags as tag
from trainlib.heap import startup


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a sweep shares (sent once to the cluster with the trainable)."""

    sweep: Sweep
    record: tracking.SweepRun


def trainable_for(resources: Resources, context: TrialContext, callbacks: Sequence[Callable] = ()) -> Any:
    """The Tune trainable for trials of this size: one process per trial, or with
    `resources.workers > 1` a DDP job of that many Ray Train workers per trial.

    `callbacks` are functions of each epoch's `trainlib.observers.EpochReport`, run (as observers)
    before the epoch is reported to Tune."""
    from ray import tune

    if resources.workers > 1:
        fn = tune.with_parameters(train_ddp_trial, context=context, resources=resources, callbacks=tuple(callbacks))
        # the trial only drives its Ray Train job, whose workers hold the CPUs/GPUs; Tune refuses
        # an empty request, and a CPU fraction here would cost a worker's place on a full node
        return tune.with_resources(fn, {"cpu": 0, "memory": 1})
    fn = tune.with_parameters(train_trial, context=context, callbacks=tuple(callbacks))
    return tune.with_resources(fn, {"cpu": resources.cpu, "gpu": resources.gpu})


@dataclass
class TrialStart:
    cfg: Any  # the trial's TrainConfig
    earlier: Any  # the child run of an earlier attempt, or None
    tags: dict[str, str]


def start_trial(sample: dict[str, Any], context: TrialContext, ddp: bool) -> TrialStart | None:
    """The trial's config, earlier attempt and tags; None when the trial had already finished
    (after Tune's last saved state): then its result is told to Tune again, not trained."""
    from ray import tune

    trial = tune.get_context()
    sweep, record = context.sweep, context.record
    cfg = sweep.trial_config(sample, **{"tracking.run_name": trial.get_trial_name()})
    earlier = record.trial_run(trial.get_trial_id())
    if earlier is not None and earlier.info.status == "FINISHED":
        tune.report({**earlier.data.metrics, "epoch": cfg.epochs, "run_id": earlier.info.run_id})
        return None
    attempt = int(earlier.data.tags.get(tag.ATTEMPT, "0")) + 1 if earlier else 1
    return TrialStart(cfg, earlier, trial_tags(record, sweep.active(sample), attempt, ddp))


def start_over(context: TrialContext, start: TrialStart) -> None:
    if start.earlier is not None:
        context.record.discard(start.earlier, "started over: this attempt left no checkpoint")


@startup()  # the first trial of a process imports torch and MLflow: see trainlib.heap
def train_trial(sample: dict[str, Any], context: TrialContext, callbacks: Sequence[Callable] = ()) -> None:
    from ray import tune

    from launcher.cluster.epoch_relay import EpochRelay
    from trainlib.observers import EpochObserver
    from trainlib.run import run

    start = start_trial(sample, context, ddp=False)
    if start is None:
        return
    point = trial_resume_point(tune.get_checkpoint(), start.earlier, start.cfg)
    if point is None:
        start_over(context, start)
    relay = EpochRelay(start.cfg.epochs, send, fail_on_nonfinite=True)
    observers = [*map(EpochObserver, callbacks), relay]
    final = run(start.cfg, resume=point, observers=observers, progress=False, tags=start.tags)
    relay.finish(final)


def train_ddp_trial(sample: dict[str, Any], context: TrialContext, resources: Resources,
                    callbacks: Sequence[Callable] = ()) -> None:
    """A TorchTrainer inside the trial; TuneReportCallback passes each epoch on to Tune.

    Its Ray Train run is named after the trial, so a retried or resumed trial restores it:
    the workers continue the trial's child run from the last checkpoint Ray Train was given."""
    from ray import tune
    from ray.train import CheckpointConfig, LoggingConfig, RunConfig
    from ray.tune.integration.ray_train import TuneReportCallback

    from launcher.cluster.ddp import make_trainer
    from launcher.cluster.job_failure import new_job_id, runs_end_failed
    from trainlib.observers import EpochObserver
    from trainlib.output_location import child, parent

    start = start_trial(sample, context, ddp=True)
    if start is None:
        return
    storage = child(parent(start.cfg.output.dir), "ddp")
    name = tune.get_context().get_trial_id()
    resume = start.earlier.info.run_id if start.earlier and has_checkpoint(child(storage, name)) else None
    if resume is None:
        start_over(context, start)
    run_config = RunConfig(name=name, storage_path=storage, callbacks=[TuneReportCallback()],
                           checkpoint_config=CheckpointConfig(num_to_keep=context.sweep.file.checkpoints.keep),
                           logging_config=LoggingConfig(log_level="WARNING"))
    job = new_job_id()
    trainer = make_trainer(start.cfg, workers=resources.workers, gpus_per_worker=resources.gpu,
                           cpus_per_worker=resources.cpu, resume=resume, run_config=run_config,
                           tags={**start.tags, tag.JOB_ID: job}, observers=[*map(EpochObserver, callbacks)],
                           fail_on_nonfinite=True)
    uri = start.cfg.tracking.uri if start.cfg.tracking.mlflow else None
    with ends_with_the_trial(), runs_end_failed(uri, job):
        trainer.fit()


@contextlib.contextmanager
def ends_with_the_trial():
    """When Tune stops this trial (a scheduler's decision), end its Ray Train job too.

    Tune only signals the trial's thread, which waits inside TorchTrainer.fit, and lets the actor
    go later; the job's controller and workers belong to this actor, so killing the actor at
    once takes them (and the CPUs/GPUs they hold) down with it."""
    import ray

    from trainlib.compat import tune_stop_event

    stop_requested = tune_stop_event()
    fitted = threading.Event()

    def watch() -> None:
        while not fitted.wait(0.5):
            if stop_requested.is_set():
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)

    threading.Thread(target=watch, name="ends-with-the-trial", daemon=True).start()
    try:
        yield
    finally:
        fitted.set()


def has_checkpoint(train_run: str) -> bool:
    """Whether an earlier Ray Train run of this trial (a folder or a URI) reported a checkpoint."""
    import pyarrow.fs as pafs
    from ray.train import Result

    filesystem, path = pafs.FileSystem.from_uri(train_run) if "://" in train_run else (pafs.LocalFileSystem(), train_run)
    if filesystem.get_file_info(path).type != pafs.FileType.Directory:
        return False
    return Result.from_path(train_run).checkpoint is not None


def trial_tags(record: tracking.SweepRun, active: dict[str, Any], attempt: int, ddp: bool) -> dict[str, str]:
    """A trial's child-run tags (not `launch.sweep`: that marks the parent, which `launch runs --sweep` finds).
    A DDP trial's workers tag their own placement (launch.placement): this process only drives them."""
    import ray
    from ray import tune

    trial = tune.get_context()
    tags = {tag.PARENT: record.parent_run_id, tag.TRIAL_ID: trial.get_trial_id(),
            tag.SAMPLED: json.dumps(active), tag.ATTEMPT: str(attempt)}
    if not ddp:
        tags.update({tag.NODE_IP: ray.util.get_node_ip_address(),
                     tag.NODE_ID: ray.get_runtime_context().get_node_id(), tag.HOSTNAME: socket.gethostname(),
                     tag.GPU_IDS: json.dumps([str(g) for g in ray.get_gpu_ids()])})
    return tags


def trial_resume_point(checkpoint, earlier, cfg):
    """Where to continue: Tune's checkpoint, else the last checkpoint in the trial's run folder of an
    attempt that was interrupted (RUNNING: its driver was killed; KILLED: Ctrl-C), which Tune's saved
    state may predate; in this trial's own child run and folder. A FAILED attempt without Tune's
    checkpoint starts over (its last epoch may be what failed)."""
    from trainlib.checkpoint import LAST
    from trainlib.resume import ResumePoint, locate
    from trainlib.output_location import local_root

    if earlier is None:
        return None
    run_dir = Path(earlier.data.tags[tag.RUN_DIR])
    if not run_dir.is_dir():  # the earlier attempt ran on another node: continue in this node's folder
        run_dir = local_root(cfg.output.dir) / run_dir.name
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = locate(str(Path(folder) / LAST), None).state
    elif earlier.info.status in ("RUNNING", "KILLED") and (run_dir / "checkpoints" / LAST).is_file():
        state = locate(str(run_dir / "checkpoints" / LAST), None).state
    else:
        return None
    adopt_hyperparams(state, cfg.to_dict())
    return ResumePoint(state, earlier.info.run_id, run_dir)


def adopt_hyperparams(state: dict[str, Any], config: dict[str, Any]) -> None:
    """PBT restores a trial from another trial's checkpoint with perturbed values: put this
    trial's optimizer values into the loaded optimizer state (which would restore the donor's).

    A new lr scales every lr the optimizer and schedule hold, so the schedule's progress and
    per-group multipliers (a finetune head's) carry over; other values are set as given."""
    from trainlib.schedulers import LRSchedule

    old, new = state["config"]["optimizer"], config["optimizer"]
    changed = {k: v for k, v in new.items() if k != "name" and old.get(k) != v}
    ratio = changed.pop("lr") / old["lr"] if "lr" in changed else 1.0
    for group in state["optimizer"]["param_groups"]:
        group.update({k: v for k, v in changed.items() if k in group})
    if ratio != 1.0:
        state["optimizer"]["param_groups"] = LRSchedule.rescaled(state["optimizer"]["param_groups"], ratio)
        state["scheduler"] = LRSchedule.rescaled(state["scheduler"], ratio)


def send(metrics: dict[str, Any], checkpoint_dir: Path) -> None:
    """ray.tune.report with a checkpoint holding only last.pt (Tune copies it to the sweep's storage)."""
    from ray import tune

    from launcher.cluster.ddp import last_only

    with last_only(checkpoint_dir) as folder:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
