"""run(tags=...) and runs stopped from outside (how a sweep nests and stops its trials)."""
from __future__ import annotations

import pytest

from trainlib import tags as tag
from trainlib.observers import EpochObserver
from trainlib.resume import locate
from trainlib.run import run


def stop_at_epoch_1(report) -> None:
    if report.epoch == 1:
        raise SystemExit(0)  # what Ray Tune raises in a trial it stops


def test_system_exit_ends_killed_and_tags_follow_the_run_when_resumed(run_config, client):
    cfg = run_config(epochs=2, batch_size=256)
    with pytest.raises(SystemExit):
        run(cfg, observers=[EpochObserver(stop_at_epoch_1)], progress=False, echo=lambda _: None,
            tags={"launch.sweep": "s", "launch.attempt": "1"})
    (stopped,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert stopped.info.status == "KILLED" and stopped.data.tags["launch.attempt"] == "1"

    point = locate(stopped.data.tags[tag.RUN_DIR], None)
    run(cfg, resume=point, progress=False, echo=lambda _: None, tags={"launch.attempt": "2"})
    resumed = client.get_run(stopped.info.run_id)
    assert resumed.info.status == "FINISHED"
    assert resumed.data.tags["launch.attempt"] == "2" and resumed.data.tags["launch.sweep"] == "s"
    assert [m.step for m in client.get_metric_history(stopped.info.run_id, "train/loss")] == [1, 2]


def test_a_run_ended_from_outside_keeps_that_end_when_its_process_fails_after(run_config, client):
    """A sweep's scheduler ends a trial's run KILLED while its last epoch runs; the rank whose DDP peers
    then vanish fails, and its own end must not overwrite the scheduler's."""
    def stopped_then_fails(report) -> None:
        client.set_terminated(report.run_id, status="KILLED")
        raise RuntimeError("Connection closed by peer")

    with pytest.raises(RuntimeError):
        run(run_config(epochs=2, batch_size=256), observers=[EpochObserver(stopped_then_fails)], progress=False,
            echo=lambda _: None)
    (ended,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert ended.info.status == "KILLED"
