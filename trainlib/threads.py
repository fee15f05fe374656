"""Torch's intra-op threads from the CPUs a run was given.

torch starts one thread per core it sees; two runs (or DDP workers, or Tune trials) on the same
cores then fight over them, and a busy 2-core machine trains many times slower. `threads: auto`
(the default) takes, first that applies:
- a Ray trial's or Ray Train worker's grant (its num_cpus, at least one thread);
- `OMP_NUM_THREADS`, the convention every OpenMP program follows;
- the CPUs this process may run on: its CPU affinity (`taskset`, `os.sched_getaffinity`), capped
  by its cgroup's CPU quota (`/sys/fs/cgroup/cpu.max`, e.g. a container's `--cpus 1.5`: 2).
A number (`threads: N`, `--threads N`) overrides them all.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import torch

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def use_cpu_threads(requested: int | str | None = "auto") -> int:
    """Set torch's intra-op thread count for this process (`requested`, or "auto"/None: see above) and return it."""
    threads = requested if isinstance(requested, int) else auto_threads()
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads


def auto_threads() -> int:
    return granted_by_ray() or omp_num_threads() or available_cpus()


def omp_num_threads() -> int | None:
    """OMP_NUM_THREADS when it is a whole number >= 1 (an OpenMP list such as "4,2": its first level)."""
    first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) >= 1 else None


def available_cpus(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The CPUs this process may run on (its affinity), capped by its cgroup's CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    quota = cgroup_quota(cpu_max)
    return min(cpus, quota) if quota else cpus


def cgroup_quota(cpu_max: Path = CGROUP_CPU_MAX) -> int | None:
    """cgroup v2 `cpu.max` ("QUOTA PERIOD", or "max PERIOD": none) as whole CPUs, rounded up; None: no quota."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError, ZeroDivisionError):  # no cgroup v2 file, "max", or an unexpected format
        return None


def granted_by_ray() -> int | None:
    """Whole CPUs Ray assigned to this actor (a trial, a Train worker; at least 1); None elsewhere."""
    ray = sys.modules.get("ray")  # only a process Ray started has it loaded; trainlib never imports it
    if ray is None or not ray.is_initialized():
        return None
    context = ray.get_runtime_context()
    if context.get_actor_id() is None:  # the driver (or a plain task): no grant of its own to go by
        return None
    cpus = context.get_assigned_resources().get("CPU", 0)
    return max(1, math.floor(cpus)) if cpus else None
