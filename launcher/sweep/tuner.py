"""The Tuner: running a sweep's trials on the connected Ray cluster, or resuming them."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from launcher.sweep.cluster import cap_ddp_trials
from launcher.sweep.loading import Sweep
from launcher.sweep.schema import Resources
from launcher.sweep.tracking import SweepRun
from launcher.sweep.workspace import Workspace, label_of
from trainlib.errors import ConfigError

NO_DEFAULT_LOGGERS_ENV = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"  # Tune's own switch (ray.tune.utils.callback)


class TrialNamer:
    """Trial names `<sweep>-<n>`: MLflow child run names and run-folder prefixes."""

    def __init__(self, label: str):
        self.label = label

    def __call__(self, trial) -> str:
        return f"{self.label}-{trial.trial_id.rsplit('_', 1)[-1]}"


def trial_dirname(trial) -> str:
    return trial.trial_id


@dataclass
class Outcome:
    trials: int
    unfinished: int  # trials left pending/running: the sweep was interrupted


def execute(sweep: Sweep, workspace: Workspace, record: SweepRun, resources: Resources, *, resume: bool,
            retry_errored: bool, echo: Callable[[str], None], trial_callbacks: Sequence[Callable] = ()) -> Outcome:
    """Run (or resume) the sweep's trials on the connected Ray cluster."""
    from launcher.cluster.ray_logs import warn_once_per_sweep
    from launcher.sweep.callbacks import (FreesPlacementGroups, ImportsAhead, LiveConsole, StateDigest, StopReasons,
                                          TrialFailures)
    from launcher.sweep.trainable import TrialContext, trainable_for

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our console replaces Tune's, which prints even at verbose=0
    warn_once_per_sweep()
    sweep = cap_ddp_trials(sweep, resources)
    trainable = trainable_for(resources, TrialContext(sweep, record), trial_callbacks)
    if resume:
        tuner = restore_tuner(workspace, trainable, retry_errored)
    else:
        callbacks = [LiveConsole(sweep, echo=echo), StopReasons(sweep, record), TrialFailures(record),
                     StateDigest(record, workspace.tune_dir), ImportsAhead(), *trial_result_files()]
        if resources.workers > 1:
            callbacks.append(FreesPlacementGroups())
        tuner = build_tuner(sweep, workspace, trainable, callbacks, reuse_actors=resources.workers == 1)
    with no_default_loggers(not resume):
        results = tuner.fit()
    return outcome(workspace, errored={Path(r.path).name for r in results if r.error is not None})


def outcome(workspace: Workspace, errored: set[str]) -> Outcome:
    """Count from the experiment state Tune saved last: after Ctrl-C, Tune's in-memory results call
    the stopped trials TERMINATED, while the saved state keeps them to be resumed. A trial whose
    process died may be saved as still RUNNING (its actor never confirmed the stop): the in-memory
    results know it `errored` (by trial folder, which is the trial id)."""
    from ray.tune import ExperimentAnalysis

    trials = ExperimentAnalysis(workspace.tune_dir).trials
    unfinished = [t for t in trials if t.status not in ("TERMINATED", "ERROR") and t.trial_id not in errored]
    return Outcome(len(trials), len(unfinished))


def trial_result_files() -> list:
    """Tune's result files in each trial's folder (result.json, progress.csv: what ExperimentAnalysis reads),
    passed explicitly so that Tune need add no logger of its own (no_default_loggers)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return [CSVLoggerCallback(), JsonLoggerCallback()]


@contextlib.contextmanager
def no_default_loggers(active: bool) -> Iterator[None]:
    """While `active`, Tuner.fit adds none of Tune's default loggers: its TensorBoard one imported
    tensorboardX, and with it torch, into the driver before the first trial started (1.5 s of every
    sweep), for event files each trial's run folder already holds (`tb/`). For a new sweep only, which
    passes trial_result_files: a resumed one gets its callbacks back from Tune's state, where a sweep
    started by an earlier version has no result-file loggers. The variable is set for the fit alone: a
    Tuner fitted later in this process (a library user's) gets Tune's defaults, and a user's setting stays."""
    if not active or NO_DEFAULT_LOGGERS_ENV in os.environ:
        yield
        return
    os.environ[NO_DEFAULT_LOGGERS_ENV] = "1"
    try:
        yield
    finally:
        os.environ.pop(NO_DEFAULT_LOGGERS_ENV, None)


def build_tuner(sweep: Sweep, workspace: Workspace, trainable: Any, callbacks: list, reuse_actors: bool = True) -> Any:
    """`reuse_actors=False` for DDP trials: a trial's Ray Train job lives as long as its actor, so
    a trial that Tune stops must take its actor (and with it the job) down."""
    from ray import tune

    from launcher.sweep.schedulers import build_search, build_trial_scheduler
    from launcher.sweep.space import tune_space

    spec = sweep.file
    tune_config = tune.TuneConfig(
        metric=sweep.metric, mode=sweep.mode, search_alg=build_search(sweep), scheduler=build_trial_scheduler(sweep),
        num_samples=spec.tune.num_samples, reuse_actors=reuse_actors, trial_name_creator=TrialNamer(label_of(sweep)),
        trial_dirname_creator=trial_dirname)
    run_config = tune.RunConfig(
        name="tune", storage_path=workspace.storage, verbose=0, callbacks=callbacks,
        failure_config=tune.FailureConfig(max_failures=spec.failure.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=spec.checkpoints.keep))
    return tune.Tuner(trainable, param_space=tune_space(spec), tune_config=tune_config, run_config=run_config)


def restore_tuner(workspace: Workspace, trainable: Any, retry_errored: bool) -> Any:
    """Tune's experiment restore: finished trials stay, unfinished ones continue from their checkpoints."""
    from ray import tune

    if not tune.Tuner.can_restore(workspace.tune_dir):
        raise ConfigError(f"{workspace.dir} holds no Tune experiment state to resume (it stopped before any trial "
                          f"started); start the sweep again without --resume")
    return tune.Tuner.restore(workspace.tune_dir, trainable, resume_unfinished=True,
                              resume_errored=retry_errored, restart_errored=False)
