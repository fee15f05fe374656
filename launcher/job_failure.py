"""No MLflow run left RUNNING when a DDP job fails: Ray Train tears down every worker of a job
as soon as one rank fails, so rank 0 may never reach the code that ends its run. The driver
(`launch train --workers N`, or a sweep's DDP trial) marks the job's runs FAILED instead, with
the failing rank and its error on one line.

A job's runs are found by the `launch.job_id` tag (tags.JOB_ID) every rank is started with.
"""
from __future__ import annotations

import contextlib
import uuid
from typing import Iterator

from trainlib import tags as tag


def new_job_id() -> str:
    return uuid.uuid4().hex


@contextlib.contextmanager
def runs_end_failed(tracking_uri: str | None, job_id: str) -> Iterator[None]:
    """Around `trainer.fit()`: on an error, the job's runs still RUNNING end FAILED."""
    try:
        yield
    except Exception as exc:
        if tracking_uri:
            mark_failed(tracking_uri, job_id, *failing_rank(exc))
        raise


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
    """End the job's RUNNING runs FAILED with the failing rank and error as tags; their ids."""
    from mlflow import MlflowClient

    from trainlib.tracking.mlflow_tracker import quiet_mlflow_logs

    quiet_mlflow_logs()
    client = MlflowClient(tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    running = client.search_runs(experiments, max_results=100, filter_string=(
        f"tags.`{tag.JOB_ID}` = '{job_id}' and attributes.status = 'RUNNING'")) if experiments else []
    for run in running:
        client.set_tag(run.info.run_id, tag.FAILED_RANK, rank)
        client.set_tag(run.info.run_id, tag.ERROR, f"rank {rank}: {error}")
        client.set_terminated(run.info.run_id, status="FAILED")
    return [r.info.run_id for r in running]
