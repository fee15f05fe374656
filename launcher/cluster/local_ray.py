"""A Ray instance on this machine only: node IP and dashboard on the loopback address.

On Linux Ray turns a requested 127.0.0.1 node IP into the machine's network address unless it
runs in its single-machine mode (`ray_constants.ENABLE_RAY_CLUSTER` false, the default on macOS
and Windows, where Ray uses the loopback address). A local instance is started in that mode; the
setting is put back afterwards, so joining a real cluster later in the same process is unchanged.

Run as a program it is `ray start` (same arguments) whose node keeps the node IP 127.0.0.1 it was
given: a whole cluster on one machine, every Ray service on the loopback address (the README's
worked example, and the test suite's clusters). Ray's single-machine switch also refuses worker
nodes, so this keeps the address as given and everything else is Ray's own `ray start` (on real
machines use `ray start` itself, with their addresses):

    python -m launcher.cluster.local_ray start --head --node-ip-address 127.0.0.1 ...
"""
from __future__ import annotations

import functools
import ipaddress
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from trainlib.errors import ConfigError

LOOPBACK = "127.0.0.1"


@contextmanager
def loopback_node() -> Iterator[str]:
    """Ray nodes started inside (ray.init, ray.cluster_utils.Cluster) take the loopback node IP."""
    from trainlib.compat import ray_single_machine_mode

    with ray_single_machine_mode():
        yield LOOPBACK


def start_local_ray(**options: Any):
    """`ray.init` of a new local instance bound to 127.0.0.1 (node IP and, if included, dashboard),
    whose processes end with this one however it ends (launcher.cluster.ray_reaper). They run in a
    session of their own: a terminal's Ctrl-C reached Ray's dashboard, which died of it, and Ray
    Train's abort then waited ~8 s on its State API; this process handles Ctrl-C and ends them.
    The raylet prestarts no idle workers (compat.ray_without_prestarted_workers): no actor of ours used
    them; and the node starts only the services the job uses (`unused_services`)."""
    import ray

    from trainlib.compat import ray_node_without, ray_processes_in_own_session, ray_without_prestarted_workers

    with loopback_node(), ray_processes_in_own_session(), ray_without_prestarted_workers(), \
            ray_node_without(unused_services(options)):
        context = ray.init(address="local", _node_ip_address=LOOPBACK, dashboard_host=LOOPBACK, **options)
    reap_at_exit()
    return context


def unused_services(options: dict[str, Any]) -> list[str]:
    """What a Ray of its own, started with ray.init `options`, does without (compat.RAY_NODE_SERVICES):
    - the autoscaler monitor: a Ray on one machine has nothing to scale (and ray.shutdown waited a
      second on its SIGTERM handler, which reported to the GCS just stopped);
    - the log monitor, unless workers' output goes to the driver (`log_to_driver`): forwarding it is its job;
    - without the dashboard, Ray's API server: Ray still starts it for its job and state APIs, and
      ray.init waits for it (~0.85 s, ~0.9 CPU-s). Nothing of a job on its own Ray asks them: Ray Train's
      placement-group cleaner, their one user, is left out there (launcher.cluster.own_instance).
    Each costs ~0.3-0.9 CPU-s at the start of every job on two cores."""
    unused = ["autoscaler monitor"]
    if not options.get("log_to_driver", True):
        unused.append("log monitor")
    if options.get("include_dashboard") is False:
        unused.append("API server")
    return unused


@functools.lru_cache(maxsize=1)
def reap_at_exit() -> None:
    """One reaper per process (it watches every process this one starts); Linux only (/proc)."""
    if sys.platform.startswith("linux"):
        from launcher.cluster import ray_reaper

        ray_reaper.watch(os.getpid())


def join_ray(address: str, **options: Any):
    """`ray.init` of the cluster at `address`. A loopback address is kept as given: on Linux Ray
    swaps it for the machine's address, where a head bound to 127.0.0.1 never answers. The driver
    then takes the node IP of this machine's raylet of that cluster (127.0.0.1 for a loopback
    head; the machine's address for a `ray start --node-ip-address 127.0.0.1` head, which Ray
    gives that address)."""
    import ray

    try:
        if address.startswith("ray://") or not on_loopback(address):  # a Ray Client driver runs no raylet work
            return ray.init(address=address, **options)
        with loopback_node():
            return ray.init(address=address, **options)
    except ConnectionError as error:  # the head answered (the preflight asked it), but no node of it runs here
        raise ConfigError(f"cannot join the Ray cluster at {address} ({error}): run launch on one of its nodes "
                          f"(a machine where `ray start` ran)") from None


def on_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_ray(verbose: bool = False, log_file: Path | None = None) -> bool:
    """Ray for a `launch` command: the cluster at $RAY_ADDRESS if set, else a new local instance
    without the dashboard (its only user in a job is Ray Train's placement-group cleaner, which a job
    on its own instance does without: launcher.cluster.own_instance); True if started here. Ray's notes
    about itself on the console only when `verbose` (else in `log_file`)."""
    import ray

    from launcher.cluster.ray_logs import quiet_ray_driver

    if ray.is_initialized():
        return False
    quiet_ray_driver(verbose, log_file)
    if os.environ.get("RAY_ADDRESS"):
        join_ray(os.environ["RAY_ADDRESS"], logging_level=logging.WARNING)
        return False
    start_local_ray(logging_level=logging.WARNING, include_dashboard=False)
    return True


def main() -> int:
    """`ray start` with the node IP pinned to the loopback address (see the module's docstring)."""
    from ray.scripts.scripts import main as ray_cli

    from trainlib.compat import pin_ray_node_ip

    pin_ray_node_ip(LOOPBACK)
    return ray_cli()


if __name__ == "__main__":
    sys.exit(main())
