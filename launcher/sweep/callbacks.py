"""Ray Tune callbacks of a sweep, run in the driver: the live console and stop reasons.

This is the one launcher module that imports ray at module level (it subclasses
ray.tune.Callback); only tuner.py imports it, once Ray is running.
"""
from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback

from launcher.sweep.console import short, trial_table
from launcher.sweep.loading import Sweep
from launcher.sweep.tracking import SweepRun


class LiveConsole(Callback):
    """A line per finished trial, and the whole table every `interval` seconds and at the end."""

    def __init__(self, sweep: Sweep, interval: float = 30.0, echo=print):
        self.sweep = sweep
        self.interval = interval
        self.echo = echo
        self.last_table = time.monotonic()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.monotonic() - self.last_table >= self.interval:
            self.show(trials)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info: Any) -> None:
        result = trial.last_result or {}
        epoch = result.get("epoch", 0)
        how = "finished" if epoch >= self.sweep.epochs else "stopped early"
        self.echo(f"trial {trial} {how} after epoch {epoch}: {self.sweep.metric} "
                  f"{short(result.get(self.sweep.metric, float('nan')))}")

    def on_trial_error(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self.echo(f"trial {trial} failed (its MLflow run has the error; traceback: {trial.error_file})")

    def on_trial_recover(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self.echo(f"trial {trial} failed; retrying from its last checkpoint")

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.show(trials)

    def show(self, trials: list) -> None:
        self.last_table = time.monotonic()
        self.echo(trial_table(trials, self.sweep))


class TrialFailures(Callback):
    """A trial that failed for good (its retries spent) whose process died with its node or by a
    hard crash never ended its child run: end it FAILED here, with the error on one line."""

    def __init__(self, record: SweepRun):
        self.record = record

    def on_trial_error(self, iteration: int, trials: list, trial, **info: Any) -> None:
        from launcher.cluster.job_failure import one_line

        run = self.record.trial_run(trial.trial_id)
        if run is not None and run.info.status == "RUNNING":
            error = trial.get_error()
            self.record.fail_trial(run.info.run_id, one_line(error) if error else "the trial's process died")


class StopReasons(Callback):
    """When the scheduler stops a trial early, say why on its child run (which ends KILLED)."""

    def __init__(self, sweep: Sweep, record: SweepRun):
        self.scheduler = sweep.file.tune.scheduler.name
        self.metric = sweep.metric
        self.epochs = sweep.epochs
        self.record = record

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info: Any) -> None:
        epoch = result.get("epoch", self.epochs)
        if result.get("done") and epoch < self.epochs and result.get("run_id"):
            value = result.get(self.metric, float("nan"))
            self.record.stop_trial(result["run_id"], f"stopped by {self.scheduler} after epoch {epoch} of "
                                                     f"{self.epochs} ({self.metric} {value:.4f})")


class ImportsAhead(Callback):
    """Once the first trial has started, what the summary and the report need is imported in the
    background (launcher.sweep.reporting_imports)."""

    def __init__(self):
        self.started = False

    def on_trial_start(self, iteration: int, trials: list, trial, **info: Any) -> None:
        from launcher.sweep.reporting_imports import import_ahead

        if not self.started:
            self.started = True
            import_ahead()


class StateDigest(Callback):
    """Record on the parent run each version of the Tune state that Tune writes (in its staging
    folder and in the sweep folder) and keep copies of the newest, so a resume restores only files
    the sweep wrote (see launcher.sweep.state_digest)."""

    def __init__(self, record: SweepRun, tune_dir: str):
        self.record = record
        self.tune_dir = tune_dir
        self.accepted: dict | None = {}
        self.memo: dict = {}

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.update(trials)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.update(trials)

    def update(self, trials: list) -> None:
        from launcher.sweep.state_digest import accept, keep_copies, load_accepted, save_accepted, state_hashes

        if self.accepted is None:  # restored by a resume: continue the recorded versions
            self.accepted = load_accepted(self.record)
        read: dict[str, bytes] = {}
        changed = accept(self.accepted, state_hashes(self.tune_dir, self.memo, read))
        if trials:  # what Tune just saved (trials' files below it), before its background copy reaches the sweep folder
            changed |= accept(self.accepted, state_hashes(trials[0].local_experiment_path, self.memo, read))
        if changed:
            save_accepted(self.record, self.accepted)
            keep_copies(self.tune_dir, self.accepted, read)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "accepted": None, "memo": {}}  # a restored sweep reads the store's record


class FreesPlacementGroups(Callback):
    """DDP trials: the driver removes the placement group of a trial's Ray Train controller that died
    (a stopped trial's), checked every second, instead of a cleaner actor per trial
    (launcher.cluster.placement_groups). Announced before any trial starts its controller."""

    INTERVAL_S = 1.0

    def __init__(self) -> None:
        self.sweeper = None
        self.due = 0.0

    def setup(self, **info: Any) -> None:
        self.announce()

    def on_trial_start(self, iteration: int, trials: list, trial, **info: Any) -> None:
        self.announce()

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.monotonic() >= self.due:
            self.due = time.monotonic() + self.INTERVAL_S
            self.announce().sweep()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.announce().sweep()
        self.sweeper.close()

    def announce(self):
        if self.sweeper is None:  # new, or restored by a resume: this driver's job announces anew
            from launcher.cluster.placement_groups import Sweeper

            self.sweeper = Sweeper()
        return self.sweeper

    def __getstate__(self) -> dict:
        return {**self.__dict__, "sweeper": None, "due": 0.0}
