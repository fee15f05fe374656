"""`launch ui`: a real server child that answers, stops on Ctrl-C with nothing left behind, dies
with `launch ui` when that is killed (kill -9), and
one-line errors for a missing store, a missing log root and a taken port; a tracking server's
own UI is pointed to, not served again."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
from click.testing import CliRunner

from launcher.cli import main
from tests.launcher.conftest import port_open, processes_mentioning


def test_tensorboard_serves_the_log_root_and_stops_on_ctrl_c(tmp_path):
    logdir = tmp_path / "runs"
    logdir.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "launcher", "ui", "--tensorboard", "--logdir", str(logdir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()  # printed once the server answers (or empty when it gave up)
    assert line.startswith("TensorBoard: http://127.0.0.1:"), proc.stderr.read() if not line else line
    url = line.split()[-1]
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200 and b"TensorBoard" in response.read()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err
    assert not port_open(url) and not processes_mentioning(str(logdir))
    assert not (Path(tempfile.gettempdir()) / f"launch-ui-tensorboard-{urlparse(url).port}.log").exists()


@pytest.fixture
def taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def assert_one_line_error(args: list[str], culprit: str) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and culprit in lines[-1], result.stderr
    assert "Traceback" not in result.output and not Path("mlflow.db").exists()
    return lines[-1]


@pytest.mark.parametrize("args, culprit", [
    (lambda t: ["--tracking-uri", f"sqlite:///{t / 'nope.db'}"], "no MLflow store"),
    (lambda t: ["--tensorboard", "--logdir", str(t / "nope")], "no run folders"),
], ids=["missing store", "missing logdir"])
def test_bad_input_is_one_line_exit_2(args, culprit, tmp_path):
    assert_one_line_error(["ui", *args(tmp_path)], culprit)


def test_a_tracking_server_store_prints_the_server_url(tmp_path):
    from click.testing import CliRunner

    from launcher.cli import main

    result = CliRunner().invoke(main, ["ui", "--tracking-uri", "http://127.0.0.1:5000"])
    assert result.exit_code == 0 and "MLflow UI: http://127.0.0.1:5000/" in result.output
    assert not (tmp_path / "mlflow.db").exists()


def test_a_taken_port_is_refused_before_any_server_starts(tmp_path, taken_port):
    error = assert_one_line_error(["ui", "--tensorboard", "--logdir", str(tmp_path), "--port", str(taken_port)],
                                  f"port {taken_port} on 127.0.0.1 is in use")
    assert "TensorBoard" not in error and not processes_mentioning(str(tmp_path))


def test_server_logs_go_to_a_private_folder_never_through_a_planted_symlink(tmp_path):
    """The log used to be TMP/launch-ui-NAME-PORT.log: anyone could plant a symlink there."""
    from launcher import servers

    port = servers.bindable_port("127.0.0.1", 0)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    planted = Path(tempfile.gettempdir()) / f"launch-ui-tensorboard-{port}.log"
    planted.symlink_to(victim)
    try:
        server = servers.Server("TensorBoard", [sys.executable, "-c", "print('served')"], "127.0.0.1", port)
        servers.start(server)
        server.process.wait(timeout=60)
        folder = server.log_path.parent
        assert folder != Path(tempfile.gettempdir()) and folder.stat().st_mode & 0o777 == 0o700
        assert server.log_path.read_text() == "served\n" and victim.read_text() == "precious\n"
        servers.remove_logs([server])
        assert not folder.exists()
    finally:
        planted.unlink()



@pytest.mark.slow
def test_kill_9_of_launch_ui_takes_its_mlflow_server_with_it(tmp_path, store):
    from launcher.cluster.ray_reaper import alive, descendants

    proc = subprocess.Popen([sys.executable, "-m", "launcher", "ui", "--tracking-uri", store],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("MLflow UI: http://127.0.0.1:"), proc.stderr.read() if not line else line
    url = line.split()[-1]
    started = descendants(proc.pid)
    assert len(started) >= 3  # the guard, `mlflow server` and the uvicorn it started
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 30
    while (alive(started) or port_open(url)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(started) and not port_open(url)
