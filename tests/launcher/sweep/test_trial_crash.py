"""A trial whose process dies (a crash, a lost node) cannot end its own MLflow run: the sweep's
driver ends it FAILED with the error on one line (real Ray, a real store)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from launcher.sweep.cmd import run_sweep
from launcher.sweep.loading import load_sweep
from tests.launcher.sweep.helpers import layer, runs_of, sweep_file

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def die(report) -> None:
    """An epoch callback that kills the trial's process outright: no `finally` runs."""
    os._exit(17)


def test_a_trial_whose_process_dies_ends_failed_with_its_error(local_ray, tmp_path, store, client):
    """On the session's Ray: a trial's worker process dies, Ray itself lives on."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    path = sweep_file(tmp_path, """\
name: crash
base: {epochs: 2, batch_size: 256}
space:
  seed: {grid: [0]}
tune: {search: grid, num_samples: 1}
failure: {max_failures: 0}
""")
    run_sweep(load_sweep(path, [layer(tmp_path, store)]), resume=False, retry_errored=False, address=None,
              verbose=False, trial_callbacks=[die])
    parents, (child,), _ = runs_of(client)
    assert child.info.status == "FAILED"
    error = child.data.tags["launch.error"]
    assert "\n" not in error and ("died" in error or "Error" in error), error
    assert parents[0].info.status == "FINISHED"
    report = (Path(parents[0].data.tags["launch.sweep_dir"]) / "report.html").read_text()
    assert "<td>FAILED</td>" in report  # the report is written with a failed trial too
