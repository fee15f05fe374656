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
from launcher.sweep.cmd import run_sweep
from launcher.sweep.loading import load_sweep

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def cluster():
    import ray
    import ray.cloudpickle
    from ray.cluster_utils import Cluster

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the hooks below run in the trials
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 2})
    nodes.add_node(num_cpus=1)
    ray.init(address=nodes.address, log_to_driver=False)
    nodes.wait_for_nodes()
    yield nodes
    ray.shutdown()
    nodes.shutdown()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f}s for {what}")
        time.sleep(0.2)


def weak_trials_wait_for_strong_ones(markers: str, store: str, report) -> None:
    """Tiny-lr trials report epoch 1 only once ASHA has judged both strong trials' epoch 1:
    a strong trial that goes on reaches epoch 2 (its epoch-1 report has returned), one that
    ASHA stopped is KILLED in MLflow."""
    from mlflow import MlflowClient

    folder, strong = Path(markers), report.metrics["lr"] >= 1e-4
    if strong:
        (folder / f"{'strong' if report.epoch == 1 else 'judged'}-{report.run_id}").touch()
        return
    if report.epoch == 1:
        client = MlflowClient(store)

        def judged() -> bool:
            ids = [p.name.split("-", 1)[1] for p in folder.glob("strong-*")]
            return len(ids) == 2 and all((folder / f"judged-{i}").exists()
                                         or client.get_run(i).info.status == "KILLED" for i in ids)

        wait_for(judged, 300, "ASHA's verdict on both strong trials")


def fail_once(markers: str, report) -> None:
    """The first strong trial to reach epoch 2 fails there once."""
    flag = Path(markers) / "failed-once"
    if report.metrics["lr"] >= 1e-4 and report.epoch == 2 and not flag.exists():
        flag.touch()
        raise RuntimeError("injected failure at epoch 2")


def barrier(markers: str, parties: int, report) -> None:
    """Every trial waits here until `parties` trials are running at the same time."""
    folder = Path(markers)
    (folder / f"running-{report.run_id}").touch()
    wait_for(lambda: len(list(folder.glob("running-*"))) >= parties, 240, f"{parties} trials at once")


def sweep_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(body)
    return path


def layer(tmp_path: Path, store: str) -> dict:
    return {"tracking": {"uri": store, "experiment": "test"}, "output": {"dir": str(tmp_path / "runs")},
            "scheduler": "constant"}


def runs_of(client) -> tuple:
    exp = client.get_experiment_by_name("test")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("launch.kind") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children, runs


def steps(client, run, key: str = "train/loss") -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run.info.run_id, key))


def most_at_once(runs) -> int:
    events = sorted([(r.info.start_time, 1) for r in runs] + [(r.info.end_time, -1) for r in runs],
                    key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def test_sweep_across_two_nodes_with_asha_and_a_retry(cluster, tmp_path, store, client, capsys):
    import ray

    path = sweep_file(tmp_path, """\
name: two-nodes
base: {epochs: 2, optimizer: adam, batch_size: 64}
space:
  optimizer.lr: {grid: [3.0e-3, 2.0e-3, 1.0e-6, 2.0e-6]}
tune:
  search: grid
  num_samples: 1
  scheduler: {asha: {grace_period: 1, reduction_factor: 2}}
resources: {cpu: 0.5}
failure: {max_failures: 1}
""")
    markers = tmp_path / "markers"
    markers.mkdir()
    hooks = [functools.partial(weak_trials_wait_for_strong_ones, str(markers), store),
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
    strong = [by_lr[3e-3], by_lr[2e-3]]

    stopped = [r for r in children if r.info.status == "KILLED"]
    assert {by_lr[1e-6].info.run_id, by_lr[2e-6].info.run_id} <= {r.info.run_id for r in stopped}, \
        "ASHA stops the tiny-lr trials after epoch 1"
    for run in stopped:  # (a strong trial too, if it was judged second and came out worse)
        assert run.data.tags["launch.stop_reason"].startswith("stopped by asha after epoch 1 of 2 (valid/acc")
        assert steps(client, run) == [1]
    finished = [r for r in strong if r.info.status == "FINISHED"]
    assert finished and len(finished) + len(stopped) == 4
    for run in finished:  # the one that failed once at epoch 2 resumed from epoch 1's checkpoint
        assert "test/acc" in run.data.metrics and steps(client, run, "valid/acc").count(1) == 1
        assert sorted(set(steps(client, run))) == [1, 2]
    attempts = sorted(r.data.tags["launch.attempt"] for r in finished)
    assert attempts[-1] == "2" and attempts[:-1] in ([], ["1"])
    assert steps(client, next(r for r in finished if r.data.tags["launch.attempt"] == "2")) == [1, 2, 2], \
        "epoch 2 logged by the failed attempt, then again after the retry; epoch 1 only once"

    assert most_at_once(children) == 4, "resources.cpu 0.5 on 2 CPUs: 4 trials at once"
    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert {c.data.tags["launch.node_id"] for c in children} == alive and len(alive) == 2

    parent_files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep.yaml", "trials.csv", "trials.json", "comparison.png", "best_config.yaml"} <= parent_files
    best = max(children, key=lambda c: max(m.value for m in client.get_metric_history(c.info.run_id, "valid/acc")))
    assert parent.data.tags["launch.best_trial"] == best.info.run_name
    assert best.info.run_id in {r.info.run_id for r in strong}
    assert parent.data.metrics["best/valid/acc"] == max(
        m.value for m in client.get_metric_history(best.info.run_id, "valid/acc"))

    hp = hparams_of(Path(by_lr[2e-6].data.tags["launch.run_dir"]) / "tb" / "hparams")
    assert hp["optimizer.lr"] == pytest.approx(2e-6)
    out = capsys.readouterr().out
    assert f"sweep two-nodes: 4 trials in MLflow ({len(finished)} finished, {len(stopped)} killed)" in out
    assert f"parent run:      {parent.info.run_id}" in out and f"launch runs --sweep {parent.info.run_id}" in out
    listed = CliRunner().invoke(main, ["runs", "--sweep", "two-nodes", "--tracking-uri", store])
    assert f"sweep two-nodes: parent run {parent.info.run_id}" in listed.output and "4 trials" in listed.output


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
    assert nan.info.status == "FAILED"
    assert "NonFiniteLoss: train loss is nan at epoch 1" in nan.data.tags["launch.error"]
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
            "--tracking-uri", store, "--experiment", "test", "--output-dir", str(tmp_path / "runs"),
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
