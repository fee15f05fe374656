"""The Ray cluster a sweep runs on: joining it (or starting a local Ray), and fitting the
trials' resources to its live nodes."""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from launcher.cluster.reachability import live_nodes, workers_hosted
from launcher.sweep.loading import Sweep
from launcher.sweep.schema import Resources
from trainlib.errors import ConfigError


def connect(address: str | None, verbose: bool, dashboard: bool = False, log_file: Path | None = None) -> bool:
    """Join the cluster at `address` (or $RAY_ADDRESS), else start a local Ray; True if started here.

    `dashboard`: for Ray Train's placement-group cleaner, which asks the dashboard's state API (on a
    `ray start` cluster the dashboard runs anyway); a new sweep's driver frees the groups itself."""
    import ray

    if ray.is_initialized():
        return False
    from launcher.cluster.ray_logs import quiet_ray_driver

    quiet_ray_driver(verbose, log_file)
    options: dict[str, Any] = {"log_to_driver": verbose, "logging_level": logging.INFO if verbose else logging.WARNING}
    from launcher.cluster.local_ray import join_ray, start_local_ray

    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        join_ray(address, **options)
    else:
        start_local_ray(num_cpus=os.cpu_count(), include_dashboard=dashboard, **options)
    return True


def fit_resources(resources: Resources, echo: Callable[[str], None]) -> Resources:
    """Check that the cluster can host a trial (with `workers > 1`: all its DDP workers, each of
    resources.cpu / resources.gpu); without any GPU in the cluster, trials use CPUs."""
    nodes = live_nodes()
    if resources.gpu and not any(n.get("GPU", 0) for n in nodes):
        echo(f"note: no GPU in the Ray cluster; trials run on CPUs (resources.gpu {resources.gpu:g} not requested)")
        resources = resources.model_copy(update={"gpu": 0.0})
    sizes = "; ".join(f"{n.get('CPU', 0):g} CPU, {n.get('GPU', 0):g} GPU" for n in nodes)
    hosted = units_in(nodes, resources)
    if not hosted:
        raise ConfigError(f"no Ray node can host a trial needing {resources.cpu:g} CPU and {resources.gpu:g} GPU "
                          f"(nodes: {sizes}); lower resources.cpu / resources.gpu")
    if hosted < resources.workers:
        raise ConfigError(f"resources.workers {resources.workers}: the Ray cluster can host {hosted} DDP workers of "
                          f"{resources.cpu:g} CPU and {resources.gpu:g} GPU each (nodes: {sizes}); lower "
                          f"resources.workers or resources.cpu, or add nodes")
    return resources


def units_in(nodes: list[dict[str, float]], resources: Resources) -> int:
    """How many trials (or, for DDP trials, workers) of this size the nodes hold, each on one node."""
    return workers_hosted(nodes, resources.cpu, resources.gpu)


def cap_ddp_trials(sweep: Sweep, resources: Resources) -> Sweep:
    """A DDP trial holds no resources itself (its Ray Train workers do), so Tune would start every
    trial at once and most would wait for workers: cap them at the worker groups the cluster holds."""
    if resources.workers == 1:
        return sweep
    tune = sweep.file.tune
    fit = max(1, units_in(live_nodes(), resources) // resources.workers)
    cap = min(fit, tune.max_concurrent_trials or fit)
    return replace(sweep, file=sweep.file.model_copy(update={"tune": tune.model_copy(
        update={"max_concurrent_trials": cap})}))
