"""`launch train` end to end: real training, a real MLflow store and real TensorBoard files."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from launcher.cli import main
from tests.conftest import train_args


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def only_run(client):
    exps = [e for e in client.search_experiments() if e.name == "test"]
    runs = client.search_runs([exps[0].experiment_id]) if exps else []
    assert len(runs) == 1
    return runs[0]


def tb_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture
def trained(default_run):
    """The session's shared default run (`launch train --epochs 2`, tests/conftest.py): read it back only."""
    return default_run.output, default_run.client()


def test_train_prints_epochs_test_accuracy_report_and_where_to_look(trained):
    out, _ = trained
    assert out.count("epoch ") >= 2 and "valid loss" in out and "img/s" in out
    assert "test acc" in out and "recall:" in out and "precision:" in out
    assert "run id:" in out and "tensorboard --logdir" in out and "launch ui" in out
    # the resolved optimizer and schedule come first: what the run uses, catalog defaults filled in
    assert out.splitlines()[:2] == [
        "optimizer: sgd lr=0.05 momentum=0.9 dampening=0.0 nesterov=False weight_decay=0.0 no_decay_bias_norm=False",
        "scheduler: cosine eta_min=0.0 warmup_epochs=0.0 warmup_start=0.1"]


def test_mlflow_run_holds_params_metrics_artifacts_and_tags(trained):
    _, client = trained
    run = only_run(client)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["model.name"] == "net" and params["optimizer.name"] == "sgd" and params["epochs"] == "2"
    for key in ("train/loss", "train/acc", "valid/loss", "valid/acc", "lr"):
        history = client.get_metric_history(run.info.run_id, key)
        assert sorted(m.step for m in history) == [1, 2], key
    assert 0.0 <= run.data.metrics["test/acc"] <= 1.0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "confusion_matrix.png", "per_class_report.txt", "checkpoints"} <= artifacts
    ckpts = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")}
    assert ckpts == {"checkpoints/best.pt", "checkpoints/last.pt"}
    tags = run.data.tags
    assert tags["launch.seed"] == "0" and tags["launch.torch_version"] == torch.__version__
    assert tags["launch.device"] == "cpu"
    logged = yaml.safe_load(Path(client.download_artifacts(run.info.run_id, "config.yaml")).read_text())
    assert logged["epochs"] == 2 and logged["optimizer"]["lr"] == 0.05


def test_tensorboard_event_files_match_mlflow(trained):
    _, client = trained
    run = only_run(client)
    scalars = tb_scalars(Path(run.data.tags["launch.run_dir"]) / "tb")
    assert {"train/loss", "valid/acc", "lr"} <= set(scalars)
    mlflow_valid = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "valid/acc")}
    assert [s for s, _ in scalars["valid/acc"]] == [1, 2]
    for step, value in scalars["valid/acc"]:
        assert value == pytest.approx(mlflow_valid[step], abs=1e-6)
    tb = Path(run.data.tags["launch.run_dir"]) / "tb"
    for split in ("train", "valid"):  # the seed's train/valid curves on one chart
        grouped = tb_scalars(tb / "loss_group" / split)["loss_group"]
        assert [v for _, v in grouped] == pytest.approx([v for _, v in scalars[f"{split}/loss"]])


def test_print_config_applies_file_then_set_then_flags(tmp_path):
    cfg = tmp_path / "my.yaml"
    cfg.write_text("epochs: 7\noptimizer: {name: sgd, lr: 0.2}\n")
    result = invoke("train", "--print-config", "--config", str(cfg), "-s", "optimizer.lr=0.3",
                    "-s", "scheduler.name=step", "--lr", "0.4", "--model", "resnet34")
    assert result.exit_code == 0
    resolved = yaml.safe_load(result.output)
    assert resolved["epochs"] == 7 and resolved["optimizer"]["lr"] == 0.4
    assert resolved["scheduler"]["name"] == "step" and resolved["model"]["name"] == "resnet34"
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_same_command_twice_gives_identical_metrics(tmp_path, store, client):
    for _ in range(2):
        assert invoke(*train_args(tmp_path, store, "--epochs", "2")).exit_code == 0
    runs = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert len(runs) == 2
    first, second = ({k: v for k, v in r.data.metrics.items() if not k.startswith("time/")} for r in runs)
    assert first == second and "valid/acc" in first


def _last_epoch(run_root: Path) -> int:
    ckpts = list(run_root.glob("*/checkpoints/last.pt"))
    if not ckpts:
        return 0
    try:
        return int(torch.load(ckpts[0], weights_only=True)["epoch"])
    except Exception:
        return 0


@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, store, client):
    killed_root = tmp_path / "killed"
    cmd = [sys.executable, "-m", "launcher", *train_args(killed_root, store, "--epochs", "4")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _last_epoch(killed_root / "runs") < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    exp = client.get_experiment_by_name("test").experiment_id
    (killed,) = client.search_runs([exp])
    assert killed.info.status == "RUNNING"  # SIGKILL leaves no chance to close it

    resumed = invoke("train", "--no-progress", "--tracking-uri", store, "--resume", killed.info.run_id)
    assert resumed.exit_code == 0, resumed.output
    assert invoke(*train_args(tmp_path / "full", store, "--epochs", "4")).exit_code == 0

    runs = {r.info.run_id: r for r in client.search_runs([exp])}
    assert len(runs) == 2
    after = runs.pop(killed.info.run_id)
    (full,) = runs.values()
    assert after.info.status == "FINISHED"
    assert after.data.metrics["test/acc"] == full.data.metrics["test/acc"]
    assert after.data.metrics["test/loss"] == pytest.approx(full.data.metrics["test/loss"], rel=1e-6)
    steps = {m.step for m in client.get_metric_history(after.info.run_id, "valid/acc")}
    assert steps == {1, 2, 3, 4}


@pytest.mark.slow
def test_sigterm_marks_the_run_killed(tmp_path, store, client):
    cmd = [sys.executable, "-m", "launcher", *train_args(tmp_path, store, "--epochs", "50")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while _last_epoch(tmp_path / "runs") < 1 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert run.info.status == "KILLED"
