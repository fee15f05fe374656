"""The driver's end of a failed DDP job on a real MLflow store: every run of the job carries the
failing rank and its error, whether the driver ends it or rank 0 ended it first."""
from __future__ import annotations

from launcher.cluster.job_failure import mark_failed
from trainlib import tags as tag


def job_run(client, job: str, status: str | None, **tags: str) -> str:
    experiment = client.get_experiment_by_name("test") or client.create_experiment("test")
    experiment_id = experiment if isinstance(experiment, str) else experiment.experiment_id
    run = client.create_run(experiment_id, tags={tag.JOB_ID: job, **tags})
    if status:
        client.set_terminated(run.info.run_id, status=status)
    return run.info.run_id


def test_the_failing_rank_is_on_every_run_of_the_job_whoever_ended_it(store, client):
    running = job_run(client, "job", None)
    ended_by_rank_0 = job_run(client, "job", "FAILED", **{tag.ERROR: "ValueError: Default process group has not "
                                                                     "been initialized"})
    attributed = job_run(client, "job", "FAILED", **{tag.FAILED_RANK: "0", tag.ERROR: "rank 0: OSError: disk"})
    finished = job_run(client, "job", "FINISHED")
    other_job = job_run(client, "other", None)

    marked = mark_failed(store, "job", "1", "FileNotFoundError: diagnostics.json is not on this node")

    assert sorted(marked) == sorted([running, ended_by_rank_0])
    for run_id in marked:
        run = client.get_run(run_id)
        assert run.info.status == "FAILED"
        assert run.data.tags[tag.FAILED_RANK] == "1"
        assert run.data.tags[tag.ERROR] == "rank 1: FileNotFoundError: diagnostics.json is not on this node"
    assert client.get_run(attributed).data.tags[tag.ERROR] == "rank 0: OSError: disk"  # attributed before: kept
    assert client.get_run(finished).info.status == "FINISHED" and tag.FAILED_RANK not in client.get_run(finished).data.tags
    assert client.get_run(other_job).info.status == "RUNNING"
