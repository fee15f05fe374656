"""`launch train --workers N` on Ray Train: real Ray, real 2-worker gloo jobs, a real MLflow store."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from launcher.cli import main
from launcher.cluster.ddp import CONTROLLER_POLL_ENV, PREEMPTION_WATCHER_ENV
from tests.conftest import train_args
from tests.trainlib.test_distributed import EXACT
from trainlib.checkpoint import LAST, load_safely
from trainlib.errors import ConfigError
from trainlib.lease import LEASE_FILE


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def only_run(client):
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    return run


def held(lease_file: Path) -> bool:
    """Whether a process holds the run's lease (trainlib.lease: an flock the kernel drops when its holder ends)."""
    import fcntl

    with open(lease_file) as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False  # closing the file drops the lock taken here


def logged_epochs(client) -> int:
    """The last epoch whose metrics reached the store (rank 0 logs them after its checkpoint)."""
    experiment = client.get_experiment_by_name("test")
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    history = client.get_metric_history(runs[0].info.run_id, "valid/acc") if runs else []
    return max((m.step for m in history), default=0)


def evaluate_checkpoint(path: Path, split: str):
    """Score a checkpoint on a whole split in this one process, as a user would."""
    from trainlib.config import validate
    from trainlib.engine import evaluate
    from trainlib.run import build_parts

    state = load_safely(path)
    parts = build_parts(validate({**state["config"], "device": "cpu"}))
    parts.model.load_state_dict(state["model"])
    return evaluate(parts.model, parts.loaders[split], parts.loss_fn, parts.device), len(parts.data.split(split))


@pytest.fixture(scope="module")
def tuned(local_ray, tmp_path_factory, empty_store_template):
    """One Tune trial running a 2-worker, 2-epoch job, as a sweep trial with `resources.workers: 2` does."""
    from mlflow import MlflowClient
    from ray import tune
    from ray.train import LoggingConfig, RunConfig
    from ray.tune.integration.ray_train import TuneReportCallback

    from launcher.cluster.ddp import make_trainer

    tmp = tmp_path_factory.mktemp("ddp")
    shutil.copy(empty_store_template, tmp / "mlflow.db")
    store = f"sqlite:///{tmp / 'mlflow.db'}"
    base = {**EXACT, "output": {"dir": str(tmp / "runs")}, "tracking": {"uri": store, "experiment": "test"}}

    def trial(params):
        run_config = RunConfig(name=f"ddp-{tune.get_context().get_trial_id()}", storage_path=str(tmp / "ray"),
                               callbacks=[TuneReportCallback()], logging_config=LoggingConfig(log_level="WARNING"))
        make_trainer({**base, "seed": params["seed"]}, workers=2, run_config=run_config).fit()

    grid = tune.Tuner(trial, param_space={"seed": 1}, tune_config=tune.TuneConfig(metric="valid/acc", mode="max"),
                      run_config=tune.RunConfig(storage_path=str(tmp / "tune"), verbose=0)).fit()
    (result,) = grid
    return result, MlflowClient(tracking_uri=store)


@pytest.mark.slow
def test_two_worker_run_tracks_one_set_of_metrics_over_the_whole_splits(tuned):
    _, client = tuned
    run = only_run(client)  # one MLflow run: rank 1 opened none
    assert run.info.status == "FINISHED"
    assert run.data.params["distributed.workers"] == "2" and run.data.tags["launch.world_size"] == "2"
    assert run.data.params["seed"] == "1"
    assert run.data.tags["launch.threads"] == "1"  # each worker's one CPU from Ray, not the machine's cores
    history = {key: client.get_metric_history(run.info.run_id, key)
               for key in ("train/loss", "train/acc", "valid/loss", "valid/acc", "lr")}
    assert all([m.step for m in values] == [1, 2] for values in history.values())
    last = Path(run.data.tags["launch.run_dir"]) / "checkpoints" / LAST
    valid, n_valid = evaluate_checkpoint(last, "valid")
    assert len(valid.targets) == n_valid == 179
    assert history["valid/acc"][-1].value == pytest.approx(valid.acc, abs=1e-6)
    assert history["valid/loss"][-1].value == pytest.approx(valid.loss, rel=1e-4)
    test, n_test = evaluate_checkpoint(last, "test")
    assert run.data.metrics["test/acc"] == pytest.approx(test.acc, abs=1e-6)
    assert len(valid.preds.unique()) > 3  # a model that learned: not a tie of constant outputs
    report = Path(client.download_artifacts(run.info.run_id, "per_class_report.txt")).read_text()
    assert sum(int(line.split("total num:")[1].split()[0]) for line in report.splitlines()) == n_test


@pytest.mark.slow
def test_every_epoch_reaches_tune_through_ray_train_report(tuned):
    result, client = tuned
    assert result.error is None
    run = only_run(client)
    frame = result.metrics_dataframe
    assert list(frame["epoch"]) == [1, 2] and list(frame["training_iteration"]) == [1, 2]
    assert set(frame["run_id"]) == {run.info.run_id}
    assert list(frame["valid/acc"]) == pytest.approx(
        [m.value for m in client.get_metric_history(run.info.run_id, "valid/acc")])
    persisted = Path(frame["checkpoint_path"].iloc[-1]) / LAST  # rank 0's checkpoint, copied by Ray Train
    assert load_safely(persisted)["epoch"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("variable, user_value, expected", [
    (CONTROLLER_POLL_ENV, None, "0.2"), (CONTROLLER_POLL_ENV, "5", "5"),
    (PREEMPTION_WATCHER_ENV, None, "0"), (PREEMPTION_WATCHER_ENV, "1", "1"),
], ids=["poll", "poll set by the user", "no preemption watcher", "watcher set by the user"])
def test_a_job_on_one_machine_gets_ray_train_settings_unless_the_user_set_them(local_ray, monkeypatch, variable,
                                                                               user_value, expected):
    """The controller's poll: at Ray's default 2 s every reported epoch waited up to 2 s (a 10-epoch job:
    53 s, now 27 s). The preemption watcher: an actor process nothing needs when every node is this machine."""
    from launcher.cluster.ddp import make_trainer

    monkeypatch.delenv(variable, raising=False)
    if user_value:
        monkeypatch.setenv(variable, user_value)
    monkeypatch.setenv("RAY_ADDRESS", local_ray)
    make_trainer(EXACT, workers=2)
    assert os.environ[variable] == expected


@pytest.mark.slow
def test_the_job_started_neither_a_preemption_watcher_nor_a_dataset_manager(tuned, local_ray):
    """Each is an actor process of its own (~1.3 CPU-s each here, while the workers start). The query
    names the session's Ray: with no address, Ray refuses when another Ray runs on the machine."""
    from ray.util.state import list_actors

    started = {actor.class_name for actor in list_actors(address=local_ray, limit=10_000)}
    assert {"TrainController", "RayTrainWorker"} <= started  # the query sees the job's actors, dead ones too
    assert not started & {"PreemptionWatcher", "DatasetManager"}


@pytest.mark.slow
def test_sigkill_of_the_driver_then_resume_with_two_workers_continues_the_run(local_ray, tmp_path, store, client):
    import ray

    (tmp_path / "exact.yaml").write_text(yaml.safe_dump(EXACT))
    args = train_args(tmp_path, store, "--config", str(tmp_path / "exact.yaml"), "--epochs", "3", "--workers", "2")
    driver = subprocess.Popen([sys.executable, "-m", "launcher", *args], env={**os.environ, "RAY_ADDRESS": local_ray},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while logged_epochs(client) < 1 and time.time() < deadline and driver.poll() is None:
        time.sleep(0.5)
    assert driver.poll() is None, "the job ended before it could be killed"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    # Ray reaps its workers; rank 0 may still be ending after its CPUs are back, holding the run's lease
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"] and time.time() < deadline:
        time.sleep(0.5)
    (lease_file,) = (tmp_path / "runs").glob(f"*/{LEASE_FILE}")
    while held(lease_file) and time.time() < deadline:
        time.sleep(0.2)
    killed = only_run(client)
    # the driver could not close it; rank 0, its peers gone, may have ended it FAILED before Ray reaped it
    assert killed.info.status in ("RUNNING", "FAILED")
    assert "--workers 2" in killed.data.tags["launch.command"]  # the driver's command, not Ray's worker

    resumed = invoke("train", "--no-progress", "--tracking-uri", store, "--resume", killed.info.run_id,
                     "--workers", "2")
    assert resumed.exit_code == 0, resumed.output
    assert f"run id:          {killed.info.run_id}" in resumed.output
    after = only_run(client)
    assert after.info.run_id == killed.info.run_id and after.info.status == "FINISHED"
    for key in ("train/loss", "valid/acc", "lr"):
        assert [m.step for m in client.get_metric_history(after.info.run_id, key)] == [1, 2, 3], key
    assert "test/acc" in after.data.metrics


def test_fractional_gpus_are_refused_for_ddp(tmp_path, store):
    from launcher.cluster.ddp import make_trainer

    with pytest.raises(ConfigError, match="cannot share a GPU"):
        make_trainer({}, workers=2, gpus_per_worker=0.5)
    result = invoke(*train_args(tmp_path, store, "--workers", "2", "--gpus-per-worker", "0.25"))
    assert result.exit_code == 2 and "cannot share a GPU" in result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("config, gpus, culprit", [
    ({"device": "cuda"}, 0, "--gpus-per-worker 1"),
    ({"device": "cpu"}, 1, "--device auto"),
    ({"distributed": {"sync_batchnorm": True}}, 0, "sync_batchnorm needs GPU"),
    ({"distributed": {"backend": "nccl"}}, 0, "'nccl' needs GPU"),
])
def test_settings_that_contradict_the_workers_placement_are_refused_before_ray_starts(config, gpus, culprit):
    from launcher.cluster.ddp import make_trainer

    with pytest.raises(ConfigError, match=culprit):
        make_trainer(config, workers=2, gpus_per_worker=gpus)
