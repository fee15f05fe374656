"""Real sweeps on a real two-node Ray cluster (ray.cluster_utils), read back from a real MLflow store.

One cluster serves the module: a head node with 1 CPU and 2 logical GPUs, a worker node with
1 CPU. Trial hooks (trainlib callbacks, run before the Tune reporter) order events across
processes through marker files, so scheduler decisions and concurrency are deterministic.
"""
from __future__ import annotations

import collections
import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from launcher.cli import main
from launcher.cluster.local_ray import loopback_node
from launcher.sweep.cmd import run_sweep
from launcher.sweep.loading import load_sweep
from launcher.sweep.tuner import NO_DEFAULT_LOGGERS_ENV
from tests.launcher.sweep import helpers
from tests.launcher.sweep.helpers import layer, most_at_once, runs_of, steps, sweep_file, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def cluster():
    import ray
    import ray.cloudpickle
    from ray.cluster_utils import Cluster

    for module in (sys.modules[__name__], helpers):  # the hooks below run in the trials
        ray.cloudpickle.register_pickle_by_value(module)
    with loopback_node():  # both nodes and this driver on 127.0.0.1
        nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 2})
        nodes.add_node(num_cpus=1)
        ray.init(address=nodes.address, log_to_driver=False)
    nodes.wait_for_nodes()
    yield nodes
    ray.shutdown()
    nodes.shutdown()


def weak_trials_wait_for_strong_ones(markers: str, report) -> None:
    """ASHA judges epoch 1 in a fixed order: the 3e-4 trial, then the 3e-3 one (clearly better, so
    it passes the cutoff the first set), then the tiny-lr trials (below both: stopped)."""
    folder = Path(markers)
    lr = report.metrics["lr"]
    if lr < 1e-4 and report.epoch == 1:
        wait_for(lambda: len(list(folder.glob("strong-*"))) >= 2, 240, "two strong trials")
    elif lr == 3e-3 and report.epoch == 1:
        wait_for(lambda: any(folder.glob("strong-*")), 240, "the 3e-4 trial")
    elif lr > 1e-4 and report.epoch == 2:  # its epoch-1 report has returned: ASHA recorded it
        (folder / f"strong-{report.run_id}").touch()


def fail_once(markers: str, report) -> None:
    flag = Path(markers) / "failed-once"
    if report.metrics["lr"] == 3e-3 and report.epoch == 2 and not flag.exists():
        flag.touch()
        raise RuntimeError("injected failure at epoch 2")


def barrier(markers: str, parties: int, report) -> None:
    """Every trial waits here until `parties` trials are running at the same time."""
    folder = Path(markers)
    (folder / f"running-{report.run_id}").touch()
    wait_for(lambda: len(list(folder.glob("running-*"))) >= parties, 240, f"{parties} trials at once")


def test_sweep_across_two_nodes_with_asha_and_a_retry(cluster, tmp_path, store, client, capsys):
    import ray

    path = sweep_file(tmp_path, """\
name: two-nodes
base: {epochs: 2, optimizer: adam, batch_size: 64}
space:
  optimizer.lr: {grid: [3.0e-3, 3.0e-4, 1.0e-6, 2.0e-6]}
tune:
  search: grid
  num_samples: 1
  scheduler: {asha: {grace_period: 1, reduction_factor: 2}}
resources: {cpu: 0.5}
failure: {max_failures: 1}
""")
    markers = tmp_path / "markers"
    markers.mkdir()
    hooks = [functools.partial(weak_trials_wait_for_strong_ones, str(markers)),
             functools.partial(fail_once, str(markers))]
    run_sweep(load_sweep(path, [layer(tmp_path, store)]), resume=False, retry_errored=False, address=None,
              verbose=False, trial_callbacks=hooks)

    parents, children, everything = runs_of(client)
    assert len(parents) == 1 and len(everything) == 1 + 4, "one parent, one child per trial, nothing else"
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert len({c.data.tags["launch.trial_id"] for c in children}) == 4
    by_lr = {json.loads(c.data.tags["launch.sampled"])["optimizer.lr"]: c for c in children}

    for lr in (3e-3, 3e-4):  # run to the end; 3e-3 failed once at epoch 2 and resumed from epoch 1's checkpoint
        run = by_lr[lr]
        assert run.info.status == "FINISHED" and "test/acc" in run.data.metrics
        assert sorted(set(steps(client, run))) == [1, 2] and steps(client, run, "valid/acc").count(1) == 1
    assert by_lr[3e-3].data.tags["launch.attempt"] == "2" and by_lr[3e-4].data.tags["launch.attempt"] == "1"
    assert steps(client, by_lr[3e-4]) == [1, 2]

    for lr in (1e-6, 2e-6):  # stopped by ASHA after epoch 1, with the reason on the run
        run = by_lr[lr]
        assert run.info.status == "KILLED", run.data.tags
        assert run.data.tags["launch.stop_reason"].startswith("stopped by asha after epoch 1 of 2 (valid/acc")
        assert steps(client, run) == [1]
        # ASHA judged it at its rung (epoch 1): its visuals were drawn there
        visuals = {a.path for a in client.list_artifacts(run.info.run_id, "visuals")}
        assert {"visuals/confusion_matrix_valid_e001.png", "visuals/confusion_matrix_train_batches_e001.png",
                "visuals/gradcam_conv2_e001.png"} <= visuals, visuals
    listed = CliRunner().invoke(main, ["runs", "--tracking-uri", store, "--sweep", "two-nodes"])
    assert listed.exit_code == 0, listed.output
    header, *body = [line.split() for line in listed.output.splitlines()[1:] if line and not line.startswith("--")]
    epochs = {row[0]: row[header.index("epochs")] for row in body}
    for lr, shown in ((1e-6, "1/2"), (2e-6, "1/2"), (3e-4, "2")):
        assert epochs[by_lr[lr].info.run_id[:8]] == shown

    assert most_at_once(children) == 4, "resources.cpu 0.5 on 2 CPUs: 4 trials at once"
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert {c.data.tags["launch.node_id"] for c in children} == alive and len(alive) == 2

    parent_files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep.yaml", "trials.csv", "trials.json", "comparison.png", "parameters.png",
            "best_config.yaml"} <= parent_files
    assert parent.data.tags["launch.best_trial"] in {by_lr[3e-3].info.run_name, by_lr[3e-4].info.run_name}
    assert parent.data.metrics["best/valid/acc"] == max(
        max(m.value for m in client.get_metric_history(by_lr[lr].info.run_id, "valid/acc")) for lr in (3e-3, 3e-4))

    hp = hparams_of(Path(by_lr[3e-4].data.tags["launch.run_dir"]) / "tb" / "hparams")
    assert hp["optimizer.lr"] == pytest.approx(3e-4)
    out = capsys.readouterr().out
    assert "sweep two-nodes: 4 trials in MLflow (2 finished, 2 killed)" in out
    report = (Path(parent.data.tags["launch.sweep_dir"]) / "report.html").read_text()  # stopped trials, said so
    assert report.count("<td>KILLED</td><td>stopped by asha after epoch 1 of 2") == 2 and "report.html" in parent_files
    assert f"parent run:      {parent.info.run_id}" in out and f"MLflow UI:       launch ui --tracking-uri {store}" in out


def hparams_of(logdir: Path) -> dict:
    """The hparams TensorBoard's HParams view reads from a trial's event file."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata

    (event_file,) = logdir.glob("events.out.tfevents.*")
    for event in EventFileLoader(str(event_file)).Load():
        for value in event.summary.value:
            if value.tag == metadata.SESSION_START_INFO_TAG:
                info = metadata.parse_session_start_info_plugin_data(value.metadata.plugin_data.content)
                return {k: v.number_value if v.HasField("number_value") else v.string_value
                        for k, v in info.hparams.items()}
    raise AssertionError(f"no hparams session in {logdir}")


def test_fractional_gpus_pack_two_trials_per_gpu_and_a_nan_trial_fails(cluster, tmp_path, store, client):
    import ray

    path = sweep_file(tmp_path, """\
name: gpus
base: {epochs: 1, optimizer: adam, batch_size: 256}
space:
  optimizer.lr: {grid: [1.0e-3, 1.0e-3, 1.0e-3, 1.0e-3, 1.0e+30]}
tune: {search: grid, num_samples: 1}
resources: {cpu: 0.25, gpu: 0.5}
failure: {max_failures: 1}
""")
    markers = tmp_path / "markers"
    markers.mkdir()
    run_sweep(load_sweep(path, [layer(tmp_path, store)]), resume=False, retry_errored=False, address=None,
              verbose=False, trial_callbacks=[functools.partial(barrier, str(markers), 4)])
    parent, children, _ = runs_of(client)
    assert len(children) == 5 and parent[0].info.status == "FINISHED", "the sweep went on past the failed trial"
    first_four = sorted(children, key=lambda c: c.info.start_time)[:4]
    assert all(c.info.status == "FINISHED" for c in first_four)
    assert most_at_once(children) == 4, "2 GPUs / 0.5 per trial: 4 at once, the 5th waits"
    ids = collections.Counter(tuple(json.loads(c.data.tags["launch.gpu_ids"])) for c in first_four)
    assert ids == {("0",): 2, ("1",): 2}
    gpu_node = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU"))
    assert {c.data.tags["launch.node_id"] for c in children} == {gpu_node}
    assert {c.data.tags["launch.device"] for c in children} == {"cpu"}, "no CUDA here: trainlib falls back to CPU"

    nan = next(c for c in children if c.info.status != "FINISHED")  # retried from scratch: first attempt discarded
    assert nan.info.status == "FAILED" and "train loss is nan" in nan.data.tags["launch.error"]  # diagnose.stop_on
    assert nan.data.tags["launch.attempt"] == "2"
    deleted = client.search_runs([nan.info.experiment_id], run_view_type=2)  # ViewType.DELETED_ONLY
    assert [d.data.tags["launch.trial_id"] for d in deleted] == [nan.data.tags["launch.trial_id"]]


def test_resume_after_sigkill_of_the_driver(cluster, tmp_path, store, client):
    path = sweep_file(tmp_path, """\
name: resumable
base: {epochs: 3}
space:
  seed: {grid: [0, 1]}
tune: {search: grid, num_samples: 1, max_concurrent_trials: 1}
resources: {cpu: 0.5}
""")
    args = [sys.executable, "-m", "launcher", "sweep", str(path), "--address", cluster.address,
            "--tracking-uri", store, "--experiment", "test", "--output-dir", str(tmp_path / "runs"), "--shared-storage",
            "-s", "batch_size=256", "-s", "scheduler.name=constant"]
    env = {**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "0"}  # save Tune's state at every step: no lost epoch
    driver = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def second_trial_at_epoch_2() -> bool:
        _, children, _ = runs_of(client) if client.get_experiment_by_name("test") else (None, [], None)
        return (len(children) == 2 and any(c.info.status == "FINISHED" for c in children)
                and any(len(steps(client, c)) >= 2 for c in children if c.info.status == "RUNNING"))

    try:
        wait_for(second_trial_at_epoch_2, 300, "one trial finished and the other at epoch 2")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    killed_at = time.time() * 1000
    _, before, _ = runs_of(client)
    done = next(c for c in before if c.info.status == "FINISHED")
    cut = next(c for c in before if c.info.status == "RUNNING")

    resumed = subprocess.run([*args, "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    parents, after, everything = runs_of(client)
    assert len(parents) == 1 and len(after) == 2 and len(everything) == 3, "parent reused, no duplicate trial"
    assert parents[0].info.status == "FINISHED"
    finished = {c.info.run_id: c for c in after}
    assert finished[done.info.run_id].info.end_time == done.info.end_time, "the finished trial was not run again"
    assert steps(client, finished[done.info.run_id]) == [1, 2, 3]
    again = finished[cut.info.run_id]  # same child run, continued from its checkpoint
    assert again.info.status == "FINISHED" and again.data.tags["launch.attempt"] == "2"
    assert sorted(set(steps(client, again))) == [1, 2, 3]
    first = min(client.get_metric_history(again.info.run_id, "train/loss"), key=lambda m: m.step)
    assert first.step == 1 and first.timestamp < killed_at, "epoch 1 was not trained again"


def test_trials_one_at_a_time_run_in_one_reused_process_and_each_keeps_its_own_records(cluster, tmp_path, store,
                                                                                       client):
    """Issue 26: with `reuse_actors` the second and third trial start in the first one's process (no new
    process, no second import of torch and MLflow), read from Tune's own records (each result's pid);
    each trial still has its own child run, run folder, checkpoint and TensorBoard files. Tune writes its
    result files, but no TensorBoard files of its own (its logger imported torch into the driver)."""
    path = sweep_file(tmp_path, """\
name: reused
base: {epochs: 1, batch_size: 256}
space:
  seed: {grid: [0, 1, 2]}
tune: {search: grid, num_samples: 1, max_concurrent_trials: 1}
resources: {cpu: 1}
""")
    run_sweep(load_sweep(path, [layer(tmp_path, store)]), resume=False, retry_errored=False, address=None,
              verbose=False)
    (parent,), children, _ = runs_of(client)
    assert parent.info.status == "FINISHED" and [c.info.status for c in children] == ["FINISHED"] * 3
    tune_dir = Path(parent.data.tags["launch.sweep_dir"]) / "tune"
    results = [json.loads(line) for found in tune_dir.glob("*/result.json") for line in found.read_text().splitlines()]
    assert len(results) == 3 and len({r["pid"] for r in results}) == 1, "three trials, one process"
    assert len(list(tune_dir.glob("*/progress.csv"))) == 3
    assert not list(tune_dir.glob("*/events.out.tfevents.*")), "Tune's TensorBoard logger (torch in the driver)"
    assert NO_DEFAULT_LOGGERS_ENV not in os.environ, "a Tuner fitted later in this process gets Tune's loggers"
    run_dirs = {Path(c.data.tags["launch.run_dir"]) for c in children}
    assert len(run_dirs) == 3
    assert all((d / "checkpoints" / "last.pt").is_file() and any((d / "tb").glob("events.*")) for d in run_dirs)
