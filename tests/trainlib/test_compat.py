"""Each private API in trainlib/compat.py, used for real: an upgrade that moves one fails here."""
from __future__ import annotations

import pytest

from trainlib import compat


def test_add_summary_writes_an_event_tensorboard_reads(tmp_path):
    from tensorboardX import SummaryWriter
    from tensorboardX.proto.summary_pb2 import Summary

    from tests.observed import read_events

    with SummaryWriter(str(tmp_path)) as writer:
        compat.add_summary(writer, Summary(value=[Summary.Value(tag="x", simple_value=1.5)]), 7)
    assert read_events(tmp_path)["simple_value"]["x"] == [7]


def test_mlflow_global_uri_is_set_inside_and_restored_after(tmp_path):
    import mlflow

    before = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'other.db'}"
    with compat.mlflow_global_uri(uri):
        assert mlflow.get_tracking_uri() == uri
    assert mlflow.get_tracking_uri() == before


@pytest.mark.slow
def test_tune_stop_event_is_the_trials_own(tmp_path):
    import ray

    from launcher.local_ray import start_local_ray
    from ray import tune

    def trainable(config):
        event = compat.tune_stop_event()
        tune.report({"is_event": int(hasattr(event, "is_set") and not event.is_set())})

    start_local_ray(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(trainable, run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0))
        (result,) = tuner.fit()
    finally:
        ray.shutdown()
    assert result.error is None and result.metrics["is_event"] == 1
