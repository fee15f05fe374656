"""DDP trials (`resources.workers: 2`): a TorchTrainer inside each Tune trial, on a real local Ray,
read back from a real MLflow store. Trial hooks run on every rank of a trial's workers."""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import pytest

from launcher.sweep.cmd import run_sweep
from launcher.sweep.loading import load_sweep
from tests.launcher.sweep import helpers
from tests.launcher.sweep.helpers import layer, runs_of, steps, sweep_file, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module", autouse=True)
def hooks_by_value():
    """The session's `local_ray` has the dashboard, as `launch sweep` starts it for DDP trials: Ray
    Train frees a stopped trial's workers through it. The hooks below run in the workers."""
    import ray.cloudpickle

    for module in (sys.modules[__name__], helpers):
        ray.cloudpickle.register_pickle_by_value(module)


def weak_waits_for_strong(runs: str, report) -> None:
    """The tiny-lr trial reports epoch 1 only once ASHA has judged the strong trial's epoch 1. A DDP
    worker's report reaches Tune later, through Ray Train's controller, so the worker cannot tell;
    Tune's result.json can: Tune logs a result there right after its scheduler has judged it."""
    if report.metrics["lr"] < 1e-4 and report.epoch == 1:
        wait_for(lambda: tune_logged_strong_epoch_1(Path(runs)), 240, "Tune to judge the strong trial's epoch 1")


def tune_logged_strong_epoch_1(runs: Path) -> bool:
    for path in runs.glob("sweeps/*/tune/*/result.json"):
        lines = path.read_text().split("\n")[:-1]  # whole lines only: Tune may be writing the next
        if any(r["epoch"] == 1 and r["lr"] > 1e-4 for r in map(json.loads, lines)):
            return True
    return False


def fail_once_at_epoch_2(markers: str, report) -> None:
    """The strong trial fails once, after epoch 2 was logged but before it reached Ray: the first rank
    there raises; the other's attempt ends with it (a flag per rank once let a rank the failure cut
    short fail the retry too)."""
    if report.metrics["lr"] > 1e-4 and report.epoch == 2:
        try:
            (Path(markers) / "failed").touch(exist_ok=False)
        except FileExistsError:
            return
        raise RuntimeError("injected failure at epoch 2")


def test_ddp_trials_report_every_epoch_asha_stops_one_a_failed_one_resumes(local_ray, tmp_path, store, client):
    import ray

    path = sweep_file(tmp_path, """\
name: ddp
base: {epochs: 3, optimizer: adam, batch_size: 64}
space:
  optimizer.lr: {grid: [3.0e-3, 1.0e-6]}
tune:
  search: grid
  num_samples: 1
  scheduler: {asha: {grace_period: 1, reduction_factor: 2}}
resources: {cpu: 0.5, workers: 2}
failure: {max_failures: 1}
""")
    markers = tmp_path / "markers"
    markers.mkdir()
    hooks = [functools.partial(weak_waits_for_strong, str(tmp_path / "runs")),
             functools.partial(fail_once_at_epoch_2, str(markers))]
    cleaners = cleaner_actors()
    run_sweep(load_sweep(path, [layer(tmp_path, store)]), resume=False, retry_errored=False, address=None,
              verbose=False, trial_callbacks=hooks)

    parents, children, everything = runs_of(client)
    assert len(parents) == 1 and len(everything) == 1 + 2, "one child run per DDP trial: rank 1 opened none"
    assert parents[0].info.status == "FINISHED"
    by_lr = {json.loads(c.data.tags["launch.sampled"])["optimizer.lr"]: c for c in children}

    strong = by_lr[3e-3]  # failed once after epoch 2; Ray Train restored epoch 1's checkpoint into the same run
    assert strong.info.status == "FINISHED" and "test/acc" in strong.data.metrics
    assert strong.data.tags["launch.attempt"] == "2"
    assert strong.data.params["distributed.workers"] == "2" and strong.data.tags["launch.world_size"] == "2"
    assert sorted(set(steps(client, strong))) == [1, 2, 3] and steps(client, strong, "valid/acc").count(1) == 1
    placement = json.loads(strong.data.tags["launch.placement"])
    assert [p["rank"] for p in placement] == [0, 1]

    weak = by_lr[1e-6]  # ASHA saw its epoch 1 through TuneReportCallback and stopped it
    assert weak.info.status == "KILLED", weak.data.tags
    assert weak.data.tags["launch.stop_reason"].startswith("stopped by asha after epoch 1 of 3 (valid/acc")
    # its workers run ahead of Tune's decision by at most the epoch in flight, then the job ends
    assert steps(client, weak)[0] == 1 and 3 not in steps(client, weak)
    assert "test/acc" not in weak.data.metrics

    # the stopped trial's Ray Train job went down with it: every CPU is free again, its placement group
    # removed by the sweep's driver (launcher.cluster.placement_groups), with no cleaner actor per trial
    wait_for(lambda: ray.available_resources().get("CPU", 0) == ray.cluster_resources()["CPU"], 30, "free CPUs")
    assert cleaner_actors() == cleaners
    assert {group["state"] for group in ray.util.placement_group_table().values()} <= {"REMOVED"}


def cleaner_actors() -> set[str]:
    """Ray Train's placement-group cleaners this Ray ever started (the GCS's actor table)."""
    from ray._private.state import actors

    return {actor_id for actor_id, actor in actors().items() if actor["ActorClassName"] == "PlacementGroupCleaner"}


def test_ddp_trials_that_the_cluster_cannot_host_are_refused_before_anything_is_written(local_ray, tmp_path, store,
                                                                                         client):
    import ray

    from trainlib.errors import ConfigError

    cpus = int(ray.cluster_resources()["CPU"])
    path = sweep_file(tmp_path, f"name: big\nspace: {{seed: [1]}}\nresources: {{cpu: 1, workers: {cpus + 1}}}\n")
    with pytest.raises(ConfigError, match=f"can host {cpus} DDP workers"):
        run_sweep(load_sweep(path, [layer(tmp_path, store)]), resume=False, retry_errored=False, address=None,
                  verbose=False)
    assert client.get_experiment_by_name("test") is None or not runs_of(client)[2]
    assert not (tmp_path / "runs").exists()
