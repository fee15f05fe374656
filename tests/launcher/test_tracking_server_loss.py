"""A tracking server that goes away mid-run: bounded retries (tracking.server_retry_s), then one
line naming the server and a clean stop that keeps the run folder; `--resume` completes the run on
the server once it is back, with no gap in its history. A real `mlflow server` on 127.0.0.1,
killed and restarted on the same port and store."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch

from tests.cluster_services import launch, mlflow_server

RETRY_S = 4


def last_checkpoint(runs: Path) -> dict:
    found = list(runs.glob("*/checkpoints/last.pt"))
    try:
        return torch.load(found[0], weights_only=True) if found else {}
    except Exception:  # being written
        return {}


@pytest.mark.slow
def test_a_lost_tracking_server_stops_the_run_in_one_line_and_resume_completes_it(tmp_path):
    from mlflow import MlflowClient

    root, runs = tmp_path / "server", tmp_path / "runs"
    root.mkdir()
    server, url = mlflow_server(root, str(root / "artifacts"))
    try:
        proc = subprocess.Popen([sys.executable, "-m", "launcher", "train", "--no-progress", "--tracking-uri", url,
                                 "--output-dir", str(runs), "--epochs", "3", "-s", f"tracking.server_retry_s={RETRY_S}",
                                 "-s", "tracking.log_model=false"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        while last_checkpoint(runs).get("epoch", 0) < 1:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGSTOP)  # epoch 1 is on the server: take the server away before epoch 2
        server.stop()
        proc.send_signal(signal.SIGCONT)
        started = time.monotonic()
        out, err = proc.communicate(timeout=300)
        lines = [line for line in err.splitlines() if line.strip()]
        assert proc.returncode == 2 and "Traceback" not in err, err[-3000:]
        assert lines[-1].startswith(f"error: the MLflow tracking server {url} stopped answering"), err[-3000:]
        assert time.monotonic() - started < RETRY_S + 60
        state = last_checkpoint(runs)
        assert state["epoch"] == 1 and list(runs.glob("*/tb/events.out.tfevents.*"))
        run_id = state["run_id"]

        server, _ = mlflow_server(root, str(root / "artifacts"), port=urlparse(url).port)
        resumed, _ = launch("train", "--no-progress", "--tracking-uri", url, "--resume", run_id, cwd=tmp_path,
                            timeout=300)
        assert resumed.returncode == 0, resumed.stdout[-1500:] + resumed.stderr[-3000:]
        client = MlflowClient(tracking_uri=url)
        assert client.get_run(run_id).info.status == "FINISHED"
        for key in ("train/loss", "valid/acc"):
            assert [m.step for m in client.get_metric_history(run_id, key)] == [1, 2, 3], key
    finally:
        server.stop()
