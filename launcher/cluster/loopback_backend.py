"""Ray Train's torch set-up for a job whose nodes are all this machine: the workers' process group
rendezvous on a TCPStore listening on 127.0.0.1 (torch's default store listens on every interface)
and gloo/NCCL talk over the loopback interface.

Ray Train's controller, a process of its own, unpickles the job's backend config and runs the
backend's start and shutdown. Ray's own `TorchConfig` lives in a module that imports torch, which
cost the controller ~1.4 s before it could start the workers; this module imports neither torch nor
`ray.train.torch`: torch is imported inside the functions that run on the workers.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import socket
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import GetTimeoutError
from ray.train.backend import Backend, BackendConfig

from launcher.cluster.local_ray import LOOPBACK
from trainlib.compat import ray_torch_worker_steps, ray_train_torch_framework
from trainlib.heap import collection_paused

LOOPBACK_INTERFACE = "lo"
SHUTDOWN_TIMEOUT_ENV = "TORCH_PROCESS_GROUP_SHUTDOWN_TIMEOUT_S"  # Ray's setting, honoured as Ray does
SHUTDOWN_TIMEOUT_S = 30
_served_store: list[Any] = []  # rank 0's store server, alive as long as its worker


@dataclass
class LoopbackTorchConfig(BackendConfig):
    """Ray's `TorchConfig` fields; `backend` is resolved ("gloo" or "nccl") before the job starts."""

    backend: str = "gloo"
    init_method: str = "env"
    timeout_s: int = 1800

    @property
    def backend_cls(self):
        return LoopbackTorchBackend

    @property
    def train_func_context(self):  # the driver wraps the workers' function in it
        return ray_torch_worker_steps().context

    @property
    def framework(self):
        return ray_train_torch_framework()

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "init_method": self.init_method, "timeout_s": self.timeout_s}


class LoopbackTorchBackend(Backend):
    """Ray's torch backend's start (through rank 0's loopback store) and shutdown."""

    share_cuda_visible_devices = True  # as Ray's: every worker on a node sees the node's GPUs of the job

    def on_start(self, worker_group, backend_config: LoopbackTorchConfig) -> None:
        size, timeout = len(worker_group), backend_config.timeout_s
        port = worker_group.execute_single(0, serve_store, size, timeout)
        worker_group.execute(set_distributed_env_vars)
        ray.get([worker_group.execute_single_async(rank, join_group, backend_config.backend, rank, size, port, timeout)
                 for rank in range(size)])

    def on_shutdown(self, worker_group, backend_config: LoopbackTorchConfig) -> None:
        done = worker_group.execute_async(shutdown_torch, len(worker_group) > 1)
        with contextlib.suppress(GetTimeoutError):
            ray.get(done, timeout=int(os.environ.get(SHUTDOWN_TIMEOUT_ENV, SHUTDOWN_TIMEOUT_S)))


@collection_paused()  # the worker's first import of torch (trainlib.heap)
def serve_store(world_size: int, timeout_s: int) -> int:
    """On rank 0: a TCPStore server on a socket bound to 127.0.0.1; its port."""
    import torch.distributed as dist

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
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR=LOOPBACK, MASTER_PORT=str(port), GLOO_SOCKET_IFNAME=LOOPBACK_INTERFACE,
                      NCCL_SOCKET_IFNAME=LOOPBACK_INTERFACE)
    timeout = datetime.timedelta(seconds=timeout_s)
    store = dist.TCPStore(LOOPBACK, port, world_size, is_master=False, timeout=timeout)
    dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world_size, timeout=timeout)


@collection_paused()  # the first import of torch on the other ranks
def set_distributed_env_vars() -> None:
    """On every rank: RANK, WORLD_SIZE, LOCAL_RANK... as torchrun sets them (Ray's own step)."""
    ray_torch_worker_steps().set_env_vars()


def shutdown_torch(destroy_process_group: bool) -> None:
    """On every rank: the process group destroyed and the CUDA cache emptied (Ray's own step)."""
    ray_torch_worker_steps().shutdown(destroy_process_group=destroy_process_group)
