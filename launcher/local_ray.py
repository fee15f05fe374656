"""A Ray instance on this machine only: node IP and dashboard on the loopback address.

On Linux Ray turns a requested 127.0.0.1 node IP into the machine's network address unless it
runs in its single-machine mode (`ray_constants.ENABLE_RAY_CLUSTER` false, the default on macOS
and Windows, where Ray uses the loopback address). A local instance is started in that mode; the
setting is put back afterwards, so joining a real cluster later in the same process is unchanged.
"""
from __future__ import annotations

import ipaddress
import logging
import os
from contextlib import contextmanager
from typing import Any, Iterator

LOOPBACK = "127.0.0.1"


@contextmanager
def loopback_node() -> Iterator[str]:
    """Ray nodes started inside (ray.init, ray.cluster_utils.Cluster) take the loopback node IP."""
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield LOOPBACK
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def start_local_ray(**options: Any):
    """`ray.init` of a new local instance bound to 127.0.0.1 (node IP and, if included, dashboard)."""
    import ray

    with loopback_node():
        return ray.init(address="local", _node_ip_address=LOOPBACK, dashboard_host=LOOPBACK, **options)


def join_ray(address: str, **options: Any):
    """`ray.init` of the cluster at `address`. A head on a loopback address has its nodes on
    127.0.0.1, so this driver takes that node IP too: with the machine's address it would wait
    forever for a raylet of that IP."""
    import ray

    if address.startswith("ray://") or not on_loopback(address):  # a Ray Client driver runs no raylet work here
        return ray.init(address=address, **options)
    with loopback_node():
        return ray.init(address=address, _node_ip_address=LOOPBACK, **options)


def on_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_ray() -> None:
    """Ray for a `launch` command: the cluster at $RAY_ADDRESS if set, else a new local instance."""
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        join_ray(os.environ["RAY_ADDRESS"], logging_level=logging.WARNING)
    else:
        start_local_ray(logging_level=logging.WARNING)
