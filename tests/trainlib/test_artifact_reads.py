"""trainlib.tracking.artifact_reads: a run's text artifacts read through its own artifact URI, from a
local artifact folder and from S3 (moto), as the MLflow client reads them."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest


@pytest.fixture(params=["local", "s3"])
def logged_run(request, client, tmp_path, monkeypatch):
    """A run of a real store with config.yaml and checkpoints/notes.txt, its artifacts in a local folder or a bucket."""
    location = None
    if request.param == "s3":
        from tests.cluster_services import make_bucket

        env = request.getfixturevalue("s3_service")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        bucket = f"artifacts-{uuid.uuid4().hex[:8]}"
        make_bucket(env, bucket)
        location = f"s3://{bucket}/runs"
    experiment = client.create_experiment(f"reads-{request.param}", artifact_location=location)
    run = client.create_run(experiment)
    (tmp_path / "config.yaml").write_text("epochs: 3\n")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "notes.txt").write_text("best at epoch 2\n")
    client.log_artifact(run.info.run_id, str(tmp_path / "config.yaml"))
    client.log_artifact(run.info.run_id, str(tmp_path / "checkpoints" / "notes.txt"), "checkpoints")
    return client.get_run(run.info.run_id)


def test_a_text_artifact_reads_back_as_the_client_downloads_it(client, logged_run, tmp_path):
    from trainlib.tracking.artifact_reads import artifact_text

    for path in ("config.yaml", "checkpoints/notes.txt"):
        through_client = client.download_artifacts(logged_run.info.run_id, path, str(tmp_path))
        assert artifact_text(client.tracking_uri, logged_run, path) == Path(through_client).read_text()
    assert artifact_text(client.tracking_uri, logged_run, "config.yaml") == "epochs: 3\n"


@pytest.mark.parametrize("path", ["diagnostics.json", "checkpoints/missing.txt", "nowhere/config.yaml", "checkpoints"])
def test_a_path_the_run_has_no_file_at_reads_as_none(client, logged_run, path):
    from trainlib.tracking.artifact_reads import artifact_text

    assert artifact_text(client.tracking_uri, logged_run, path) is None
