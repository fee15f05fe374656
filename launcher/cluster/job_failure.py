"""No MLflow run left RUNNING when a DDP job fails or is interrupted: Ray Train tears down every
worker of a job as soon as one rank fails (or the driver aborts it on Ctrl-C / SIGTERM), so rank 0
may never reach the code that ends its run. The driver (`launch train --workers N`, or a sweep's
DDP trial) ends the job's runs instead: FAILED with the failing rank and its error on one line, or
KILLED with the checkpoints on disk logged as artifacts (resumable, as an interrupted single run).

A job's runs are found by the `launch.job_id` tag (tags.JOB_ID) every rank is started with.
"""
from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import Iterator

from trainlib import tags as tag


def new_job_id() -> str:
    return uuid.uuid4().hex


@contextlib.contextmanager
def runs_end_failed(tracking_uri: str | None, job_id: str) -> Iterator[None]:
    """Around `trainer.fit()`: on an error, the job's runs still RUNNING end FAILED; on an
    interrupt (KeyboardInterrupt: Ctrl-C, SIGTERM), KILLED with their checkpoints logged."""
    try:
        yield
    except KeyboardInterrupt:
        if tracking_uri:
            mark_killed(tracking_uri, job_id)
        raise
    except Exception as exc:
        if tracking_uri:
            mark_failed(tracking_uri, job_id, *failing_rank(exc))
        raise


def job_error(exc: BaseException) -> Exception:
    """What a driver raises for a failed job (a Ray Train WorkerGroupError): a rank's UserError as
    it is (one `error:` line), else JobFailed naming the first failed rank and its error."""
    from trainlib.errors import JobFailed, UserError

    failures = getattr(exc, "worker_failures", None) or {}
    user_errors = [e for e in failures.values() if isinstance(e, UserError)]
    if user_errors:
        return user_errors[0]
    return JobFailed("rank {}: {}".format(*failing_rank(exc)))


def failing_rank(exc: BaseException) -> tuple[str, str]:
    """(rank, one-line error) of the first failed worker; ("driver", ...) when no worker failed."""
    failures = getattr(exc, "worker_failures", None) or {}
    if failures:
        rank = min(failures)
        return str(rank), one_line(failures[rank])
    return "driver", one_line(exc)


def one_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)  # a RayTaskError wraps the worker's own exception
    exc = cause if isinstance(cause, BaseException) else exc
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {text}"[:500]


def mark_failed(tracking_uri: str, job_id: str, rank: str, error: str) -> list[str]:
    """End the job's RUNNING runs FAILED with the failing rank and error as tags; their ids. A run its
    rank 0 already ended FAILED gets the same tags, its end standing: rank 0 fails of the job's end when
    Ray Train tears its process group down under it (its own error, a consequence, is replaced)."""
    client = mlflow_client(tracking_uri)
    runs = [run for run in job_runs(client, job_id, "RUNNING", "FAILED")
            if run.info.status == "RUNNING" or tag.FAILED_RANK not in run.data.tags]
    for run in runs:
        client.set_tag(run.info.run_id, tag.FAILED_RANK, rank)
        client.set_tag(run.info.run_id, tag.ERROR, f"rank {rank}: {error}")
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="FAILED")
    return [r.info.run_id for r in runs]


def mark_killed(tracking_uri: str, job_id: str) -> list[str]:
    """End the job's RUNNING runs KILLED, their checkpoints (in the run folder rank 0 tagged) logged
    first as an interrupted single run's are: `--resume RUN_ID` continues them; their ids."""
    from trainlib.run import checkpoint_files

    client = mlflow_client(tracking_uri)
    running = job_runs(client, job_id, "RUNNING")
    for run in running:
        run_dir = run.data.tags.get(tag.RUN_DIR)
        for path in checkpoint_files(Path(run_dir)) if run_dir else []:
            if path.is_file():
                client.log_artifact(run.info.run_id, str(path), "checkpoints")
        client.set_terminated(run.info.run_id, status="KILLED")
    return [r.info.run_id for r in running]


def mlflow_client(tracking_uri: str):
    from mlflow import MlflowClient

    from trainlib.tracking.mlflow_tracker import quiet_mlflow_logs

    quiet_mlflow_logs()
    return MlflowClient(tracking_uri)


def job_runs(client, job_id: str, *statuses: str) -> list:
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, max_results=100, filter_string=f"tags.`{tag.JOB_ID}` = '{job_id}'"
                              ) if experiments else []
    return [run for run in runs if run.info.status in statuses]
