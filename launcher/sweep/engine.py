"""Ray and the Tuner: the sweep folder, connecting to (or starting) Ray, running or resuming.

A sweep lives in `<output.dir>/sweeps/<name>-<time>/`: sweep.yaml (the file as given),
sweep.json (the resolved sweep and its MLflow parent run, what --resume reads), tune/
(Tune's experiment: trial checkpoints and state), trials/ (each trial's run folder with
its TensorBoard logs), ddp/ (DDP trials' Ray Train runs), and the summary (trials.csv/json,
comparison.png, best_config.yaml).
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from launcher.sweep.loading import Sweep
from launcher.sweep.schema import Resources
from launcher.sweep.tracking import SweepRun
from trainlib.config import resolve
from trainlib.errors import ConfigError
from trainlib.storage import child, is_remote, local_root

STAMP = "%Y%m%d-%H%M%S"


def label_of(sweep: Sweep) -> str:
    return f"{sweep.name}-smoke" if sweep.smoke else sweep.name


def sweeps_root(sweep: Sweep) -> Path:
    return local_root(sweep.base["output"]["dir"]) / "sweeps"


@dataclass(frozen=True)
class Workspace:
    """`dir`: the sweep folder on this machine; `storage`: where Tune and Ray Train keep the sweep's
    checkpoints and state: the same folder, or its twin under a remote output dir (s3://...)."""

    dir: Path
    storage: str

    @classmethod
    def of(cls, sweep: Sweep, folder: Path) -> "Workspace":
        output = sweep.base["output"]["dir"]
        return cls(folder, child(output, "sweeps", folder.name) if is_remote(output) else str(folder))

    @property
    def tune_dir(self) -> str:
        return child(self.storage, "tune")

    @property
    def state_file(self) -> Path:
        return self.dir / "sweep.json"

    def save(self, sweep: Sweep, record: SweepRun) -> None:
        state = {"sweep": sweep.to_json(), "record": vars(record)}
        self.state_file.write_text(json.dumps(state, indent=1))

    def load(self) -> tuple[Sweep, SweepRun]:
        state = json.loads(self.state_file.read_text())
        return Sweep.from_json(state["sweep"]), SweepRun(**state["record"])


def new_workspace(sweep: Sweep) -> tuple[Workspace, Sweep]:
    """A fresh sweep folder; the trials' paths become absolute (they run in other folders and nodes)."""
    from trainlib.tracking.mlflow_tracker import resolve_tracking_uri

    root = sweeps_root(sweep)
    stamp = time.strftime(STAMP)
    folder = root / f"{label_of(sweep)}-{stamp}"
    n = 1
    while folder.exists():
        n += 1
        folder = root / f"{label_of(sweep)}-{stamp}-{n}"
    folder.mkdir(parents=True)
    shutil.copyfile(sweep.source, folder / "sweep.yaml")
    workspace = Workspace.of(sweep, folder)
    absolute = {"output": {"dir": child(workspace.storage, "trials")},
                "tracking": {"uri": resolve_tracking_uri(sweep.base["tracking"]["uri"])}}
    return workspace, replace(sweep, base=resolve([sweep.base, absolute]).to_dict())


def latest_workspace(sweep: Sweep) -> Workspace:
    root = sweeps_root(sweep)
    pattern = re.compile(re.escape(label_of(sweep)) + r"-\d{8}-\d{6}(-\d+)?$")
    found = sorted(p for p in root.glob(f"{label_of(sweep)}-*")
                   if pattern.match(p.name) and (p / "sweep.json").is_file()) if root.is_dir() else []
    if not found:
        raise ConfigError(f"no sweep '{label_of(sweep)}' to resume under {root}; start it without --resume")
    return Workspace.of(sweep, found[-1])


def connect(address: str | None, verbose: bool, dashboard: bool = False) -> bool:
    """Join the cluster at `address` (or $RAY_ADDRESS), else start a local Ray; True if started here.

    `dashboard` (for DDP trials): Ray Train frees the workers' placement group of a trial that Tune
    stopped through the dashboard's state API (on a `ray start` cluster the dashboard runs anyway)."""
    import ray

    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.WARNING}
    from launcher.local_ray import join_ray, start_local_ray

    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        join_ray(address, **options)
    else:
        start_local_ray(num_cpus=os.cpu_count(), include_dashboard=dashboard, **options)
    return True


def fit_resources(resources: Resources, echo: Callable[[str], None]) -> Resources:
    """Check that the cluster can host a trial (with `workers > 1`: all its DDP workers, each of
    resources.cpu / resources.gpu); without any GPU in the cluster, trials use CPUs."""
    nodes = live_nodes()
    if resources.gpu and not any(n.get("GPU", 0) for n in nodes):
        echo(f"note: no GPU in the Ray cluster; trials run on CPUs (resources.gpu {resources.gpu:g} not requested)")
        resources = resources.model_copy(update={"gpu": 0.0})
    sizes = "; ".join(f"{n.get('CPU', 0):g} CPU, {n.get('GPU', 0):g} GPU" for n in nodes)
    hosted = units_in(nodes, resources)
    if not hosted:
        raise ConfigError(f"no Ray node can host a trial needing {resources.cpu:g} CPU and {resources.gpu:g} GPU "
                          f"(nodes: {sizes}); lower resources.cpu / resources.gpu")
    if hosted < resources.workers:
        raise ConfigError(f"resources.workers {resources.workers}: the Ray cluster can host {hosted} DDP workers of "
                          f"{resources.cpu:g} CPU and {resources.gpu:g} GPU each (nodes: {sizes}); lower "
                          f"resources.workers or resources.cpu, or add nodes")
    return resources


def live_nodes() -> list[dict[str, float]]:
    import ray

    return [n["Resources"] for n in ray.nodes() if n.get("Alive")]


def units_in(nodes: list[dict[str, float]], resources: Resources) -> int:
    """How many trials (or, for DDP trials, workers) of this size the nodes hold, each on one node."""
    return sum(int(min(node.get("CPU", 0) // resources.cpu,
                       node.get("GPU", 0) // resources.gpu if resources.gpu else float("inf"))) for node in nodes)


def cap_ddp_trials(sweep: Sweep, resources: Resources) -> Sweep:
    """A DDP trial holds no resources itself (its Ray Train workers do), so Tune would start every
    trial at once and most would wait for workers: cap them at the worker groups the cluster holds."""
    if resources.workers == 1:
        return sweep
    tune = sweep.file.tune
    fit = max(1, units_in(live_nodes(), resources) // resources.workers)
    cap = min(fit, tune.max_concurrent_trials or fit)
    return replace(sweep, file=sweep.file.model_copy(update={"tune": tune.model_copy(
        update={"max_concurrent_trials": cap})}))


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
    from launcher.ray_logs import warn_once_per_sweep
    from launcher.sweep.callbacks import LiveConsole, StopReasons, TrialFailures
    from launcher.sweep.trainable import TrialContext, trainable_for

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our console replaces Tune's, which prints even at verbose=0
    warn_once_per_sweep()
    sweep = cap_ddp_trials(sweep, resources)
    trainable = trainable_for(resources, TrialContext(sweep, record), trial_callbacks)
    if resume:
        tuner = restore_tuner(workspace, trainable, retry_errored)
    else:
        callbacks = [LiveConsole(sweep, echo=echo), StopReasons(sweep, record), TrialFailures(record)]
        tuner = build_tuner(sweep, workspace, trainable, callbacks, reuse_actors=resources.workers == 1)
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
