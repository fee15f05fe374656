"""A DDP job whose rank 1 fails: Ray Train stops every worker, so rank 0 never ends its MLflow
run; the driver does, FAILED, with the failing rank and its one-line error (real Ray, real gloo)."""
from __future__ import annotations

import pytest

from tests.trainlib.test_distributed import EXACT
from trainlib import tags as tag

pytestmark = pytest.mark.slow


class FailOnRank1:
    """An epoch callback (run on every rank) that breaks rank 1 after its first epoch."""

    def __call__(self, report) -> None:
        import torch.distributed as dist

        if dist.get_rank() == 1:
            raise FileNotFoundError("diagnostics.json is not on this node")


def test_a_failing_rank_ends_the_run_failed_with_the_rank_and_its_error(local_ray, tmp_path, store, client):
    from ray.train import WorkerGroupError

    from launcher.cluster.ddp import make_trainer
    from launcher.cluster.job_failure import job_error, new_job_id, runs_end_failed
    from trainlib.observers import EpochObserver

    job = new_job_id()
    config = {**EXACT, "epochs": 3, "output": {"dir": str(tmp_path / "runs")},
              "tracking": {"uri": store, "experiment": "test"}}
    with pytest.raises(WorkerGroupError) as failed, runs_end_failed(store, job):
        make_trainer(config, workers=2, tags={tag.JOB_ID: job}, observers=[EpochObserver(FailOnRank1())]).fit()
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert run.info.status == "FAILED"
    assert run.data.tags[tag.FAILED_RANK] == "1"
    assert run.data.tags[tag.ERROR] == "rank 1: FileNotFoundError: diagnostics.json is not on this node"
    assert run.data.tags[tag.JOB_ID] == job
    # `launch train --workers N` prints it as `failed: rank 1: ...` (exit 1)
    assert str(job_error(failed.value)) == "rank 1: FileNotFoundError: diagnostics.json is not on this node"
