"""A DDP job on a Ray instance that lives and dies with it (`launch train --workers N` on the local
Ray it started): Ray Train's helpers for a lasting, autoscaled cluster are left out.

- No resource requests to the autoscaler's coordinator: a local instance has no autoscaler, and the
  coordinator is an actor process of its own that the controller waited for (~1.3 s) before it
  started the workers.
- No placement-group cleaner: it frees the workers' placement group when the controller dies and the
  cluster lives on, and here the instance ends with the job (launcher.cluster.ray_reaper). It is an
  actor process of its own (~1.6 CPU-s) asking Ray's state API, which needs the dashboard.

Ray Train's controller imports this module (the policy is pickled by reference): keep it light.
"""
from __future__ import annotations

from typing import Any

from trainlib.compat import ray_train_fixed_scaling_without_autoscaler, ray_train_placement_group_cleaner

FixedScalingWithoutAutoscaler = ray_train_fixed_scaling_without_autoscaler(__name__, "FixedScalingWithoutAutoscaler")


def for_own_instance(trainer: Any, controller_args: dict[str, Any]) -> None:
    """What the controller of `trainer` (an InterruptibleTrainer) starts with, when its Ray is its own."""
    controller_args["scaling_policy"] = FixedScalingWithoutAutoscaler(trainer.scaling_config)
    without_cleaner(controller_args)


def without_cleaner(controller_args: dict[str, Any]) -> None:
    cleaner = ray_train_placement_group_cleaner()
    controller_args["callbacks"] = [c for c in controller_args["callbacks"] if not isinstance(c, cleaner)]
