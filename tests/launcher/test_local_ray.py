"""Local Ray on the loopback address, and a second driver joining it the way `launch` does."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from launcher.cluster.local_ray import on_loopback, unused_services


@pytest.mark.parametrize("address, loopback", [
    ("127.0.0.1:6379", True), ("localhost:6379", True), ("[::1]:6379", True), ("127.0.0.2:10", True),
    ("10.0.0.5:6379", False), ("head.example:6379", False), ("auto", False),
])
def test_loopback_addresses_are_recognised(address, loopback):
    assert on_loopback(address) is loopback


@pytest.mark.parametrize("options, unused", [
    ({}, ["autoscaler monitor"]),  # ray.init's defaults: workers' output to the driver, the dashboard if it can
    ({"include_dashboard": False}, ["autoscaler monitor", "API server"]),  # a DDP job (launch train --workers)
    ({"include_dashboard": False, "log_to_driver": False}, ["autoscaler monitor", "log monitor", "API server"]),
    ({"include_dashboard": True, "log_to_driver": False}, ["autoscaler monitor", "log monitor"]),  # DDP trials
])
def test_a_ray_of_its_own_leaves_out_what_its_options_do_not_use(options, unused):
    assert unused_services(options) == unused


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


@pytest.mark.slow
def test_a_local_ray_prestarts_no_idle_workers_and_runs_no_monitors():
    """Tune's trials and Ray Train's actors never take a prestarted worker (each has a runtime env):
    start_local_ray's raylet starts none (without the setting, two `ray::IDLE` are there at once).
    Nor does it start the autoscaler monitor (Ray's shutdown waited a second on it), the log monitor
    when workers' output does not go to the driver, or Ray's API server without the dashboard."""
    probe = ("import os, time, ray; from launcher.cluster.local_ray import start_local_ray; "
             "from tests.processes import command_line, descendants; "
             "start_local_ray(num_cpus=2, include_dashboard=False, log_to_driver=False); time.sleep(1); "
             "print('\\n'.join(f'{pid} {command_line(pid)}' for pid in descendants(os.getpid()))); "
             "ray.shutdown()")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    processes = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    assert any("raylet" in line for line in processes.values()), processes  # the check sees Ray's processes
    assert any("ray::RuntimeEnvAgent" in line for line in processes.values()), processes  # and its Python ones
    assert not [line for line in processes.values() if is_ray_worker(line)], processes
    assert not [line for line in processes.values() if "/autoscaler/_private/monitor.py" in line], processes
    assert not [line for line in processes.values() if "/_private/log_monitor.py" in line], processes
    assert not [line for line in processes.values() if "/dashboard/dashboard.py" in line], processes


def is_ray_worker(command: str) -> bool:
    """A Ray worker process: named ray::IDLE once it is up, default_worker.py (or setup_worker.py) before."""
    program = command.split()[:2]
    return command.startswith("ray::IDLE") or any(part.endswith(("/default_worker.py", "/setup_worker.py"))
                                                  for part in program)
