"""Remote output dirs: where a node writes, and a finished run folder published to S3 (moto's
standalone S3 server on 127.0.0.1) without its checkpoints."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster_services import make_bucket
from trainlib.output_location import child, is_remote, local_root, parent, publish


@pytest.fixture(scope="module")
def s3(s3_service):
    mp = pytest.MonkeyPatch()
    try:
        for key, value in s3_service.items():
            mp.setenv(key, value)
        make_bucket(s3_service, "runs")
        yield s3_service
    finally:
        mp.undo()


@pytest.mark.parametrize("location, remote", [("s3://b/p", True), ("gs://b", True), ("runs", False),
                                              ("/mnt/nfs/runs", False), ("file-s3://x", False)])
def test_remote_locations_are_uris_ray_storage_takes(location, remote):
    assert is_remote(location) is remote


def test_a_remote_output_dir_is_written_in_this_nodes_scratch(monkeypatch, tmp_path):
    monkeypatch.setenv("LAUNCH_SCRATCH_DIR", str(tmp_path / "scratch"))
    assert local_root("s3://bucket/a/b/") == tmp_path / "scratch" / "s3" / "bucket" / "a" / "b"
    assert local_root("runs") == Path("runs").resolve()
    assert child("s3://bucket/a/", "sweeps", "x") == "s3://bucket/a/sweeps/x"
    assert parent("s3://bucket/a/trials") == "s3://bucket/a" and parent("/x/trials") == "/x"


def test_publish_copies_the_run_folder_but_its_checkpoints(s3, tmp_path):
    import boto3

    run = tmp_path / "net-digits-1a2b3c4d"
    for name, data in {"config.yaml": b"epochs: 1\n", "tb/events.out": b"\x00" * 100,
                       "checkpoints/best.pt": b"w" * 1000, "checkpoints/last.pt": b"w" * 1000}.items():
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(data)
    assert publish(run, "s3://runs/team") == "s3://runs/team/net-digits-1a2b3c4d"
    objects = boto3.client("s3").list_objects_v2(Bucket="runs")["Contents"]
    assert {o["Key"]: o["Size"] for o in objects} == {"team/net-digits-1a2b3c4d/config.yaml": 10,
                                                      "team/net-digits-1a2b3c4d/tb/events.out": 100}
    assert publish(run, str(tmp_path / "local")) is None  # a local output dir is the run folder's home already
