"""The Ray Train pieces of a DDP job, imported only once Ray runs (`launch --help` stays fast).

- `InterruptibleTrainer`: Ctrl-C / SIGTERM in the driver abort the job (every rank stops) and
  come out of `fit` as a KeyboardInterrupt, so the driver ends the job's runs KILLED and the
  command exits as an interrupted single run does. Ray Train's own SIGINT handler aborts, then
  exits 1 with nothing said; Ray's SIGTERM handler exits mid-call and its C++ one dumps a stack.
- On a Ray instance of its own (`own_instance`), the controller starts without Ray Train's helpers
  for a lasting, autoscaled cluster (launcher.cluster.own_instance); in a sweep, without Ray Train's
  placement-group cleaner when the sweep's driver frees the groups (launcher.cluster.placement_groups).
"""
from __future__ import annotations

import signal

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from ray.train.torch import TorchTrainer

from launcher.cluster.local_ray import on_loopback
from launcher.cluster.own_instance import for_own_instance
from launcher.cluster.placement_groups import for_sweep
from launcher.guard import raise_interrupt
from trainlib.compat import (adjust_ray_train_controller, drop_ray_train_datasets_callback_without_datasets,
                             override_ray_train_sigint_hook)

ABORT_TIMEOUT_S = 60


class InterruptibleTrainer(TorchTrainer):
    """A TorchTrainer whose driver, when `fit` runs in the main thread, turns SIGINT and SIGTERM
    into a KeyboardInterrupt after aborting the job (in a Tune trial's thread Ray registers no handler)."""

    controller = None
    own_instance = False  # the Ray instance lives and dies with this job (a local one `launch train` started)

    def register_signal_handlers(self, controller) -> None:  # Ray Train's hook, main thread only
        self.controller = controller
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, raise_interrupt)

    def fit(self):
        try:
            return super().fit()
        except KeyboardInterrupt:
            self.abort()
            raise

    def abort(self) -> None:
        """Stop every worker of the job (Ray Train's abort: the controller kills its worker group)."""
        if self.controller is None:
            return
        try:
            ray.get(self.controller.abort.remote(), timeout=ABORT_TIMEOUT_S)
        except (RayActorError, GetTimeoutError):  # the controller exits as it aborts
            pass


def adjust_controller(trainer: InterruptibleTrainer, controller_args: dict) -> None:
    if trainer.own_instance:
        for_own_instance(trainer, controller_args)
    else:
        for_sweep(controller_args)


override_ray_train_sigint_hook(InterruptibleTrainer, InterruptibleTrainer.register_signal_handlers)
drop_ray_train_datasets_callback_without_datasets(InterruptibleTrainer)  # our workers load their own data
adjust_ray_train_controller(InterruptibleTrainer, adjust_controller)


def single_machine() -> bool:
    """Every live node of the Ray instance runs on this machine's loopback address."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return bool(nodes) and all(on_loopback(f"{n['NodeManagerAddress']}:0") for n in nodes)
