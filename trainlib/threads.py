"""Torch's intra-op threads from the CPUs a run was given.

torch starts one thread per core it sees; two runs (or DDP workers, or Tune trials) on the same
cores then fight over them, and a busy 2-core machine trains many times slower. A Ray trial or
Ray Train worker uses the CPUs Ray granted it (its num_cpus, at least one thread); a plain run
the cores this process may run on; `threads` (`--threads N`) overrides both.
"""
from __future__ import annotations

import math
import os
import sys

import torch


def use_cpu_threads(requested: int | None = None) -> int:
    """Set torch's intra-op thread count for this process and return it."""
    threads = requested or granted_by_ray() or len(os.sched_getaffinity(0))
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return threads


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
