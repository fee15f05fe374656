"""The Ray Train pieces of a DDP job, imported only once Ray runs (`launch --help` stays fast).

- `InterruptibleTrainer`: Ctrl-C / SIGTERM in the driver abort the job (every rank stops) and
  come out of `fit` as a KeyboardInterrupt, so the driver ends the job's runs KILLED and the
  command exits as an interrupted single run does. Ray Train's own SIGINT handler aborts, then
  exits 1 with nothing said; Ray's SIGTERM handler exits mid-call and its C++ one dumps a stack.
- `LoopbackTorchConfig`: on one machine, the workers' process group rendezvous on a TCPStore
  listening on 127.0.0.1 (torch's default store listens on every interface) and gloo/NCCL talk
  over the loopback interface.
"""
from __future__ import annotations

import datetime
import os
import signal
import socket

import ray
import torch.distributed as dist
from ray.exceptions import GetTimeoutError, RayActorError
from ray.train.torch import TorchConfig, TorchTrainer

from launcher.guard import raise_interrupt
from launcher.cluster.local_ray import LOOPBACK, on_loopback
from trainlib.compat import (drop_ray_train_datasets_callback_without_datasets, override_ray_train_sigint_hook,
                             ray_torch_backend)

TorchBackend, set_torch_distributed_env_vars = ray_torch_backend()

ABORT_TIMEOUT_S = 60
LOOPBACK_INTERFACE = "lo"
_served_store: list[dist.TCPStore] = []  # rank 0's store server, alive as long as its worker


class InterruptibleTrainer(TorchTrainer):
    """A TorchTrainer whose driver, when `fit` runs in the main thread, turns SIGINT and SIGTERM
    into a KeyboardInterrupt after aborting the job (in a Tune trial's thread Ray registers no handler)."""

    controller = None

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


override_ray_train_sigint_hook(InterruptibleTrainer, InterruptibleTrainer.register_signal_handlers)
drop_ray_train_datasets_callback_without_datasets(InterruptibleTrainer)  # our workers load their own data


def single_machine() -> bool:
    """Every live node of the Ray instance runs on this machine's loopback address."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return bool(nodes) and all(on_loopback(f"{n['NodeManagerAddress']}:0") for n in nodes)


class LoopbackTorchConfig(TorchConfig):
    @property
    def backend_cls(self):
        return LoopbackTorchBackend


class LoopbackTorchBackend(TorchBackend):
    """Ray Train's torch set-up with the rendezvous store bound to 127.0.0.1 (the backend is given)."""

    def on_start(self, worker_group, backend_config: TorchConfig) -> None:
        size, timeout = len(worker_group), backend_config.timeout_s
        port = worker_group.execute_single(0, serve_store, size, timeout)
        worker_group.execute(set_torch_distributed_env_vars)
        ray.get([worker_group.execute_single_async(rank, join_group, backend_config.backend, rank, size, port, timeout)
                 for rank in range(size)])


def serve_store(world_size: int, timeout_s: int) -> int:
    """On rank 0: a TCPStore server on a socket bound to 127.0.0.1; its port."""
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(world_size * 4)
    port = listener.getsockname()[1]
    _served_store.append(dist.TCPStore(LOOPBACK, port, world_size, is_master=True, wait_for_workers=False,
                                       timeout=datetime.timedelta(seconds=timeout_s),
                                       master_listen_fd=listener.detach()))
    return port


def join_group(backend: str, rank: int, world_size: int, port: int, timeout_s: int) -> None:
    """On every rank: the process group through rank 0's loopback store, over the loopback interface."""
    os.environ.update(MASTER_ADDR=LOOPBACK, MASTER_PORT=str(port), GLOO_SOCKET_IFNAME=LOOPBACK_INTERFACE,
                      NCCL_SOCKET_IFNAME=LOOPBACK_INTERFACE)
    timeout = datetime.timedelta(seconds=timeout_s)
    store = dist.TCPStore(LOOPBACK, port, world_size, is_master=False, timeout=timeout)
    dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world_size, timeout=timeout)
