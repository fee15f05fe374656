"""Local Ray on the loopback address, and a second driver joining it the way `launch` does."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from launcher.cluster.local_ray import on_loopback


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1:6379", True), ("localhost:6379", True), ("[::1]:6379", True), ("127.0.0.2:10", True),
    ("10.0.0.5:6379", False), ("head.example:6379", False), ("auto", False),
])
def test_loopback_addresses_are_recognised(address, loopback):
    assert on_loopback(address) is loopback


@pytest.mark.slow
def test_a_driver_joins_a_loopback_head_through_ray_address(local_ray):
    """A driver that took the machine's network address would wait forever for its raylet. The
    session's `local_ray` is a head start_local_ray started."""
    probe = ("from launcher.cluster.local_ray import ensure_ray; import ray; ensure_ray(); "
             "print(ray.util.get_node_ip_address(), len(ray.nodes()))")
    env = {**os.environ, "RAY_ADDRESS": local_ray}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["127.0.0.1", "1"]  # the head's one node, not a second
