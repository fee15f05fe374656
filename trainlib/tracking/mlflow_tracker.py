"""MLflow tracker on an explicit run id (no global active run, so it is safe in Ray workers)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

EPOCH_METRIC = "train/loss"  # logged once per trained epoch, at step = the epoch

MAX_PARAMS_PER_CALL = 100
MAX_PARAM_LEN = 6000
MODEL_NAME = "model"  # runs:/<run id>/model
RETRY_PAUSE_S = 2.0  # between tries of a tracking server that stopped answering
ENDED = ("FINISHED", "FAILED", "KILLED")  # MLflow run statuses that end a run


def resolve_tracking_uri(uri: str | None) -> str:
    """Config value, else $MLFLOW_TRACKING_URI, else a SQLite file in the working directory."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        return f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    if "://" not in uri:  # a plain path: a folder store is not supported by MLflow 3, use SQLite
        return f"sqlite:///{Path(uri).resolve()}"
    return uri


def quiet_mlflow_logs() -> None:
    """MLflow and alembic log every schema migration of a new SQLite store at INFO, and MLflow
    draws a progress bar for every artifact download."""
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def sqlite_file(uri: str) -> Path | None:
    """The database file of a SQLite tracking URI; None for other stores."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def ui_hint(uri: str) -> str:
    """Where to browse a store: a tracking server serves its own UI; a local store needs `launch ui`."""
    if is_server(uri):
        return f"{uri.rstrip('/')}/   (the tracking server's own UI)"
    return f"launch ui --tracking-uri {uri}"


def artifact_root_for(uri: str) -> str | None:
    """Keep a SQLite store's artifacts beside its database file, whatever the cwd."""
    db = sqlite_file(uri)
    return str(db.parent / "mlartifacts") if db else None


def get_or_create_experiment(client, name: str, uri: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    root = artifact_root_for(uri)
    location = f"{root}/{name}" if root else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # another process created it first
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


class MlflowTracker:
    def __init__(self, client, uri: str, experiment: str, run_name: str | None = None,
                 run_id: str | None = None, tags: dict[str, str] | None = None, epochs: int = 0,
                 retry_s: float = 60.0):
        """`client`: an MlflowClient on `uri`, from trainlib.tracking.mlflow_store.open_store; `epochs`: the
        configured epochs of a resume, which may continue a FINISHED run that trained fewer;
        `retry_s`: how long a tracking server that stops answering is retried (see `send`)."""
        self.uri = uri
        self.client = client
        self.retry_s = retry_s
        self.lost = False  # the server stopped answering: later writes are skipped
        if is_server(uri):  # MLflow's own retries would wait minutes per call; `send` retries instead
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        self.logged: set[tuple[str, int]] = set()  # (metric, step) pairs the run holds: each is logged once
        if run_id is None:
            exp_id = get_or_create_experiment(self.client, experiment, uri)
            run = self.client.create_run(exp_id, run_name=run_name, tags=tags or {})
        else:
            run = self.resumable(run_id, epochs)
        self.run_id = run.info.run_id
        self.run_name = run.info.run_name
        self.experiment_id = run.info.experiment_id
        if run_id is not None:
            self.logged = {(key, m.step) for key in run.data.metrics
                           for m in self.client.get_metric_history(run_id, key)}
            self.drop_pending_models()
            self.client.update_run(run_id, status="RUNNING")

    def resumable(self, run_id: str, epochs: int):
        """The run to continue; a FINISHED one that already trained `epochs` epochs has nothing left to
        do and is refused (whichever checkpoint the resume starts from)."""
        from mlflow.exceptions import MlflowException

        from trainlib.errors import CheckpointError

        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            raise CheckpointError(f"run {run_id} is not in the store {self.uri}; resume it against its own "
                                  f"store (--tracking-uri)") from None
        if run.info.status == "FINISHED" and epochs <= self.epochs_trained(run_id):
            raise CheckpointError(f"run {run_id} is FINISHED: nothing to resume; start a new run from its "
                                  f"weights with --finetune {run_id}")
        return run

    def epochs_trained(self, run_id: str) -> int:
        return max((m.step for m in self.client.get_metric_history(run_id, EPOCH_METRIC)), default=0)

    def drop_pending_models(self) -> None:
        """Delete this run's models still PENDING: an interrupted attempt's half-logged copy."""
        from mlflow.entities import LoggedModelStatus

        models = self.client.search_logged_models([self.experiment_id],
                                                  filter_string=f"source_run_id = '{self.run_id}'")
        for model in models:
            if model.status == LoggedModelStatus.PENDING:
                self.client.delete_logged_model(model.model_id)

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        run = self.send(self.client.get_run, self.run_id)
        existing = run.data.params if run else {}
        items = [Param(k, str(v)[:MAX_PARAM_LEN]) for k, v in params.items() if k not in existing]
        for i in range(0, len(items), MAX_PARAMS_PER_CALL):
            self.send(self.client.log_batch, self.run_id, params=items[i:i + MAX_PARAMS_PER_CALL])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if (k, step) not in self.logged]
        if batch:
            self.send(self.client.log_batch, self.run_id, metrics=batch)
        self.logged.update((m.key, step) for m in batch)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        from trainlib.diskspace import space_checked

        with space_checked(path):
            self.send(self.client.log_artifact, self.run_id, str(path), artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.send(self.client.log_batch, self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_model(self, model: Any, input_example: Any) -> None:
        """The model in MLflow's PyTorch format at runs:/<run id>/model, with input example and signature.

        Saved as `pt2` (torch.export: a traced graph and weights, no pickled code), so loading
        needs neither this package nor trust in the file. The run's status is left alone.
        """
        import copy

        import mlflow
        import torch
        from mlflow.models import infer_signature

        from trainlib.compat import mlflow_global_uri, mlflow_without_requirement_check

        model = copy.deepcopy(model).cpu().eval()
        example = input_example.detach().cpu().contiguous()  # torch.export guards the example's strides
        with torch.no_grad():
            output = model(example)
        logged = self.send(self.client.create_logged_model, self.experiment_id, name=MODEL_NAME,
                           source_run_id=self.run_id)
        if logged is None:  # the tracking server is gone
            return
        # mlflow.pytorch.log_model has no client argument: it reads the global tracking URI.
        try:
            with mlflow_global_uri(self.uri), mlflow_without_requirement_check():
                mlflow.pytorch.log_model(model, name=MODEL_NAME, model_id=logged.model_id, run_id=self.run_id,
                                         input_example=example.numpy(),
                                         signature=infer_signature(example.numpy(), output.numpy()),
                                         pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
                                         serialization_format="pt2")
        except BaseException:
            self.client.delete_logged_model(logged.model_id)  # no PENDING model left behind
            raise

    def close(self, status: str) -> None:
        """End the run `status`, unless it has ended already: a sweep's scheduler stopped it (KILLED, with
        the reason) while its last epoch ran, and a DDP rank whose peers went down with the stopped trial
        must not overwrite that end with its own error. A run's first end stands."""
        run = self.send(self.client.get_run, self.run_id)
        if run is not None and run.info.status in ENDED:
            return
        self.send(self.client.set_terminated, self.run_id, status=status)

    def send(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One call to the store. A tracking server that stops answering is retried for `retry_s`
        seconds; then TrackingLost (one line), and every later call is skipped: what the run keeps
        locally (checkpoints, TensorBoard) stays, and `--resume` continues it once the server is back."""
        from trainlib.errors import TrackingLost

        if self.lost:
            return None
        deadline = time.monotonic() + self.retry_s
        while True:
            try:
                return call(*args, **kwargs)
            except Exception:
                if self.answers():
                    raise
                if time.monotonic() >= deadline:
                    self.lost = True
                    raise TrackingLost(f"the MLflow tracking server {self.uri} stopped answering; gave up after "
                                       f"{self.retry_s:g}s: the run stopped, its checkpoints and TensorBoard metrics "
                                       f"are in its run folder; once the server is back: "
                                       f"launch train --resume {self.run_id} --tracking-uri {self.uri}") from None
            time.sleep(RETRY_PAUSE_S)

    def answers(self) -> bool:
        """Whether the store answers (a local one always does: its errors are real)."""
        from trainlib.errors import ConfigError
        from trainlib.tracking.reachable import check_tracking_server

        try:
            check_tracking_server(self.uri)
        except ConfigError:
            return False
        return True

    def summary_writer(self) -> None:
        return None
