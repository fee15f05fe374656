"""Preflight of runs, DDP jobs and sweeps meant for a cluster: one line, exit 2, nothing written,
within the time a user waits (run as a user runs them: `python -m launcher` in a fresh process).

A live Ray cluster's refusals (token auth, the defaults on a two-node cluster) are in
tests/launcher/test_cluster.py, which starts one with `ray start`.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cluster_services import HOST, free_port, launch, one_error, port_free

SWEEP = str(Path(__file__).resolve().parents[2] / "search_spaces" / "optim.yaml")
OTHER_MACHINE = "192.0.2.1:6379"  # TEST-NET-1 (RFC 5737): no machine answers there


def written(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("command", [
    ["train", "--epochs", "1"],
    ["sweep", SWEEP, "--smoke"],
    ["eval", "0123abcd"],
])
def test_a_dead_tracking_server_is_one_line_within_15_seconds(tmp_path, command):
    uri = f"http://{HOST}:{free_port()}"
    out, seconds = launch(*command, "--tracking-uri", uri, cwd=tmp_path)
    line = one_error(out)
    assert uri in line and "does not answer" in line
    assert seconds < 15, seconds
    assert written(tmp_path) == []


@pytest.mark.parametrize("address", [f"{HOST}:{free_port()}", f"ray://{HOST}:{free_port()}", OTHER_MACHINE],
                         ids=["free-port", "ray-client-free-port", OTHER_MACHINE])  # one id in every xdist worker
def test_a_wrong_address_is_one_line_within_30_seconds(tmp_path, address):
    args = ["--output-dir", "s3://bucket/sweeps", "--shared-storage"]
    out, seconds = launch("sweep", SWEEP, "--smoke", "--address", address, *args, cwd=tmp_path)
    line = one_error(out)
    assert f"no Ray cluster answers at {address}" in line and "--address" in line, line
    assert seconds < 30, seconds
    assert written(tmp_path) == []


@pytest.mark.slow
def test_a_wrong_ray_address_for_a_ddp_job_is_one_line(tmp_path):
    address = f"{HOST}:{free_port()}"
    out, seconds = launch("train", "--workers", "2", "--shared-storage", cwd=tmp_path, env={"RAY_ADDRESS": address})
    assert f"no Ray cluster answers at {address}" in one_error(out)
    assert seconds < 30, seconds
    assert written(tmp_path) == []


@pytest.mark.slow
def test_a_port_that_is_no_ray_head_is_refused_within_30_seconds(tmp_path):
    """Something listens, but it is not a Ray GCS (here: a plain HTTP server)."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", HOST],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path / "..")
    try:
        deadline = time.monotonic() + 30
        while port_free(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        out, seconds = launch("sweep", SWEEP, "--smoke", "--address", f"{HOST}:{port}", "--shared-storage",
                              cwd=tmp_path)
    finally:
        server.terminate()
        server.wait()
    line = one_error(out)
    assert f"the Ray cluster at {HOST}:{port}" in line and "speaks no gRPC" in line, line  # sniffed, not timed out
    assert seconds < 30, seconds


@pytest.mark.slow
@pytest.mark.parametrize("env, flags, culprits", [
    ({}, [], ["SQLite file", "--tracking-uri http://", "local folder", "s3://", "--shared-storage"]),
    ({}, ["--output-dir", "s3://bucket/runs"], ["SQLite file"]),
])
def test_a_cluster_address_with_local_storage_is_refused_before_anything(tmp_path, env, flags, culprits):
    """A head on another machine (an address of TEST-NET-1, never dialled): refused from the
    command line alone. A head on this machine is asked how many nodes it has first
    (tests/launcher/test_cluster.py)."""
    out, _ = launch("sweep", SWEEP, "--smoke", "--address", OTHER_MACHINE, *flags, cwd=tmp_path, env=env)
    line = one_error(out)
    assert "runs on the Ray cluster at" in line and all(c in line for c in culprits), line
    assert written(tmp_path) == []  # no mlflow.db, no runs/


@pytest.mark.slow
def test_ray_address_from_the_environment_counts_as_a_cluster(tmp_path):
    out, _ = launch("train", "--workers", "2", cwd=tmp_path, env={"RAY_ADDRESS": OTHER_MACHINE})
    assert "the DDP job runs on the Ray cluster at" in one_error(out)
    assert written(tmp_path) == []


def test_ui_on_a_tracking_server_prints_its_url(tmp_path):
    out, _ = launch("ui", "--tracking-uri", "http://127.0.0.1:5999", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "MLflow UI: http://127.0.0.1:5999/" in out.stdout


@pytest.mark.parametrize("node_ips, refused", [("10.255.255.1 192.0.2.7", True), (f"{HOST} 192.0.2.7", False)])
def test_a_cluster_without_a_node_on_this_machine_is_refused(node_ips, refused):
    """A driver attaches to a raylet on its own machine: Ray would search for one for a minute."""
    from launcher.cluster.reachability import ClusterProbe
    from trainlib.errors import ConfigError

    probe = ClusterProbe(f"{HOST}:6379")
    answer = f"print('{node_ips}'); print(2)"  # what PROBE prints: the alive nodes' IPs, then their count
    probe.process = subprocess.Popen([sys.executable, "-c", answer], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
    if refused:
        with pytest.raises(ConfigError, match=r"no node of the Ray cluster at .* runs on this machine \(its nodes: "
                                              r"10.255.255.1, 192.0.2.7\)"):
            probe.answer()
    else:
        assert probe.answer() == 2


@pytest.mark.parametrize("greeting, said", [
    (bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]), ""),  # an HTTP/2 SETTINGS frame: a gRPC server, as a Ray head's GCS
    (b"", ""),  # closed without a word: Ray's own client gives the verdict
    (None, ""),  # silent: the same
    (b"HTTP/1.0 400 Bad request\r\nServer: x\r\n\r\n", "HTTP/1.0 400 Bad request"),
    (b"\r\n<html>", "<html>"),
])
def test_an_http2_greeting_tells_a_grpc_server_from_any_other(monkeypatch, greeting, said):
    import socket
    import threading

    from launcher.cluster import reachability

    monkeypatch.setattr(reachability, "SNIFF_TIMEOUT_S", 0.3)
    with socket.create_server((HOST, 0)) as server:
        def answer() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(len(reachability.HTTP2_PREFACE))
                if greeting is not None:
                    connection.sendall(greeting)
                else:
                    time.sleep(1)
        thread = threading.Thread(target=answer)
        thread.start()
        with socket.create_connection(server.getsockname()) as connection:
            assert reachability.http2_reply(connection) == said
        thread.join()
