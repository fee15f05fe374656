"""MLflow side of a sweep: the parent run, finding a trial's child run, and the trials read back.

The parent run holds the sweep's settings and file; each trial is a child run (tag
mlflow.parentRunId) written by trainlib.run itself. `collect_rows` reads the trials back from
MLflow, so what is built from them is the same after a resumed sweep and whichever node a trial
ran on.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from launcher.sweep.loading import Sweep
from trainlib import tags as tag


@functools.lru_cache(maxsize=4)
def client_for(uri: str):
    """One MlflowClient per store and process (creating one checks the store's schema)."""
    from trainlib.tracking.mlflow_store import open_store

    return open_store(uri, create=True)


@dataclass(frozen=True)
class SweepRun:
    """Where a sweep's trials are recorded: what a trial needs to find its child run."""

    uri: str
    experiment_id: str
    parent_run_id: str

    @property
    def client(self):
        return client_for(self.uri)

    def trial_run(self, trial_id: str):
        """This sweep's child run of a trial (an earlier attempt), or None."""
        runs = self.client.search_runs(
            [self.experiment_id], max_results=2,
            filter_string=f"tags.`{tag.TRIAL_ID}` = '{trial_id}' and tags.`{tag.PARENT}` = '{self.parent_run_id}'")
        return runs[0] if runs else None

    def discard(self, run, reason: str) -> None:
        """Soft-delete an attempt that is started over, so each trial keeps one child run (ended
        KILLED first: a killed driver's attempt is still RUNNING)."""
        self.client.set_tag(run.info.run_id, tag.DISCARDED, reason)
        if run.info.status == "RUNNING":
            self.client.set_terminated(run.info.run_id, status="KILLED")
        self.client.delete_run(run.info.run_id)

    def children(self) -> list:
        return self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`{tag.PARENT}` = '{self.parent_run_id}'",
            order_by=["attributes.start_time ASC"], max_results=10000)

    def stop_trial(self, run_id: str, reason: str) -> None:
        self.client.set_tag(run_id, tag.STOP_REASON, reason)
        self.client.set_terminated(run_id, status="KILLED")

    def fail_trial(self, run_id: str, error: str) -> None:
        self.client.set_tag(run_id, tag.ERROR, error[:5000])
        self.client.set_terminated(run_id, status="FAILED")

    def set_status(self, status: str) -> None:
        if status == "RUNNING":
            self.client.update_run(self.parent_run_id, status="RUNNING")
        else:
            self.client.set_terminated(self.parent_run_id, status=status)


def open_parent(sweep: Sweep, label: str, sweep_dir: Path) -> SweepRun:
    """Create the sweep's parent run: settings as params, the sweep file as an artifact."""
    from mlflow.entities import Param

    from trainlib.tracking.mlflow_tracker import get_or_create_experiment

    uri, experiment = sweep.base["tracking"]["uri"], sweep.base["tracking"]["experiment"]
    client = client_for(uri)
    exp_id = get_or_create_experiment(client, experiment, uri)
    run = client.create_run(exp_id, run_name=label, tags={
        tag.KIND: "sweep", tag.SWEEP: sweep.name, tag.SWEEP_DIR: str(sweep_dir),
        tag.SMOKE: str(sweep.smoke).lower()})
    record = SweepRun(uri, exp_id, run.info.run_id)
    params = {**sweep_params(sweep), **{f"space.{k}": d.describe() for k, d in sweep.file.space.items()}}
    client.log_batch(record.parent_run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
    client.log_artifact(record.parent_run_id, str(sweep_dir / "sweep.yaml"))
    return record


def sweep_params(sweep: Sweep) -> dict[str, Any]:
    tune, res = sweep.file.tune, sweep.file.resources
    return {"sweep.name": sweep.name, "tune.metric": sweep.metric, "tune.mode": sweep.mode,
            "tune.num_samples": tune.num_samples, "tune.search": tune.search,
            "tune.scheduler": tune.scheduler.name, "resources.cpu": res.cpu, "resources.gpu": res.gpu,
            "resources.workers": res.workers, "failure.max_failures": sweep.file.failure.max_failures,
            "epochs": sweep.epochs, "model": sweep.base["model"]["name"], "data": sweep.base["data"]["name"]}


@dataclass
class TrialRow:
    trial: str
    run_id: str
    status: str
    epochs: int
    best: float | None  # the objective's best value over the trial's epochs
    last: float | None
    test_acc: float | None
    params: dict[str, Any]
    run_dir: str
    node_ip: str
    gpu_ids: str
    attempt: str
    note: str = ""  # why it stopped early, or its error
    history: list[float] = field(default_factory=list)
    seconds: float | None = None  # from the run's start to its end
    loss: float | None = None  # the trial's last valid/loss (the last tie-break, see `ranked`)

    def flat(self, keys: list[str]) -> dict[str, Any]:
        row = {k: v for k, v in asdict(self).items() if k not in ("params", "history")}
        return {**row, **{k: self.params.get(k, "") for k in keys}}


def collect_rows(record: SweepRun, metric: str, mode: str) -> list[TrialRow]:
    """The sweep's trials, judged by `metric` (`mode`: max or min)."""
    rows = []
    for run in record.children():
        tags, metrics = run.data.tags, run.data.metrics
        history = per_epoch(record.client.get_metric_history(run.info.run_id, metric))
        pick = max if mode == "max" else min
        rows.append(TrialRow(
            trial=run.info.run_name, run_id=run.info.run_id, status=run.info.status,
            epochs=len(per_epoch(record.client.get_metric_history(run.info.run_id, "train/loss"))),
            best=pick(history) if history else None, last=history[-1] if history else None,
            test_acc=metrics.get("test/acc"), params=json.loads(tags.get(tag.SAMPLED, "{}")),
            run_dir=tags.get(tag.RUN_DIR, ""), node_ip=tags.get(tag.NODE_IP, ""),
            gpu_ids=tags.get(tag.GPU_IDS, ""), attempt=tags.get(tag.ATTEMPT, ""),
            note=tags.get(tag.STOP_REASON) or tags.get(tag.ERROR, ""), history=history,
            seconds=(run.info.end_time - run.info.start_time) / 1000 if run.info.end_time else None,
            loss=metrics.get(TIE_LOSS)))
    return rows


def per_epoch(history: list) -> list[float]:
    """One value per epoch (step), the latest where a retried epoch was logged twice."""
    latest = {m.step: m.value for m in sorted(history, key=lambda m: (m.step, m.timestamp))}
    return [latest[step] for step in sorted(latest)]


TIE_LOSS = "valid/loss"
RANKING = "best value over each trial's epochs; ties: the last epoch's value, then the lower last valid/loss"


def ranked(rows: list[TrialRow], mode: str) -> list[TrialRow]:
    """Best first by the objective's best value over the trial's epochs; trials that tie there by the last
    epoch's value (a trial that ends at the best beats one that fell back), then by the lower last valid/loss."""
    sign = -1.0 if mode == "max" else 1.0

    def key(r: TrialRow) -> tuple[float, float, float]:
        last = sign * r.last if r.last is not None else math.inf
        return sign * r.best, last, r.loss if r.loss is not None else math.inf

    return sorted((r for r in rows if r.best is not None), key=key)
