"""Data-parallel training: which process am I, which samples are mine, and agreeing on results.

`trainlib.run` detects its setting from the environment, in this order:
- a process group already initialised by the launcher (Ray Train's TorchTrainer does this);
- torchrun's RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR environment: we initialise the group;
- otherwise a single process: world size 1, where every helper here is a no-op.

Batches: `batch_size` is per worker, so the global batch is world_size x batch_size. Every
world size walks the same seeded permutation of the train split per epoch, and rank r takes
positions r, r + W, r + 2W, ... of it; so global batch k of W workers with batch B holds the
same samples as batch k of one worker with batch W x B (when W divides the split's size;
otherwise the sampler repeats up to W - 1 samples so that every rank takes the same number
of steps). Valid/test splits are cut in contiguous shards without repeats and the predictions
are gathered in order, so evaluation covers each split exactly once.
"""
from __future__ import annotations

import atexit
import dataclasses
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DistributedSampler

from trainlib import tags as tag
from trainlib.errors import ConfigError

if TYPE_CHECKING:
    from trainlib.config import TrainConfig
    from trainlib.data.datasets import ImageSplits
    from trainlib.engine import EpochResult, EvalResult
    from trainlib.tracking.open import RunHandle


def local_rank() -> int:
    """This process's index on its machine, as torchrun and Ray Train set it (0 when alone)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def launched_as_worker() -> bool:
    """True in a process that torchrun or Ray Train started as one of several workers."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def resolve_backend(backend: str, device_type: str) -> str:
    if backend == "auto":
        return "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl" and device_type != "cuda":
        raise ConfigError("distributed.backend 'nccl' needs GPU workers; use 'gloo' (or 'auto') on CPU")
    return backend


def check_sync_batchnorm(enabled: bool, device_type: str) -> None:
    if enabled and device_type != "cuda":
        raise ConfigError("distributed.sync_batchnorm needs GPU workers (torch's SyncBatchNorm is GPU-only)")


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    backend: str = "none"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes MLflow, TensorBoard, checkpoints and output."""
        return self.rank == 0

    def record_world(self, cfg: TrainConfig) -> TrainConfig:
        """The config as this job runs it: `distributed.workers` = the real world size."""
        workers = cfg.distributed.workers
        if workers == self.world_size:
            return cfg
        if workers != 1:
            raise ConfigError(f"distributed.workers is {workers} but this job has {self.world_size} process(es); "
                              f"start {workers} workers with `launch train --workers {workers}` or torchrun, "
                              "or leave distributed.workers at 1 to take torchrun's world size")
        return cfg.model_copy(update={"distributed": cfg.distributed.model_copy(update={"workers": self.world_size})})

    def tags(self, cfg: TrainConfig) -> dict[str, str]:
        return {tag.WORLD_SIZE: str(self.world_size), tag.BACKEND: self.backend,
                tag.GLOBAL_BATCH_SIZE: str(self.world_size * cfg.batch_size)}

    def prepare(self, model: nn.Module, sync_batchnorm: bool) -> nn.Module:
        """The module to train: `model` itself alone, else wrapped in DistributedDataParallel
        (which shares `model`'s parameters, so optimizers and checkpoints use `model`)."""
        if not self.enabled:
            return model
        check_sync_batchnorm(sync_batchnorm, self.device.type)
        if sync_batchnorm:
            nn.SyncBatchNorm.convert_sync_batchnorm(model)  # swaps the BatchNorm children of `model` in place
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def scale_lr(self, optimizer: torch.optim.Optimizer, lr_scaling: str) -> None:
        """`linear`: lr x world size (Goyal et al. 2017) for every param group, before the
        schedule is built from it; `none`: the configured lr drives the global batch as is."""
        if lr_scaling == "linear":
            for group in optimizer.param_groups:
                group["lr"] *= self.world_size

    def samplers(self, data: ImageSplits, seed: int) -> dict[str, Iterable[int]]:
        """This rank's sample order for each split (the train one needs `set_epoch` every epoch)."""
        return {"train": self.train_sampler(len(data.train), seed), "valid": self.eval_shard(len(data.valid)),
                "test": self.eval_shard(len(data.test))}

    def train_sampler(self, size: int, seed: int) -> DistributedSampler:
        """This rank's share of the epoch's seeded permutation (call `set_epoch` every epoch)."""
        return DistributedSampler(range(size), num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=seed)

    def eval_shard(self, size: int) -> range:
        """A contiguous slice of an evaluation split: the shards, in rank order, are the split."""
        return range(size * self.rank // self.world_size, size * (self.rank + 1) // self.world_size)

    def seed_epoch(self, seed: int, epoch: int, loader_generator: torch.Generator) -> None:
        """Under DDP, seed each rank's augmentation RNGs from (seed, epoch, rank): ranks draw
        different augmentations, and a resumed run repeats an epoch exactly. A single process
        keeps one stream, checkpointed with the run."""
        if not self.enabled:
            return
        derived = int(np.random.SeedSequence([seed, epoch, self.rank]).generate_state(1)[0])
        random.seed(derived)
        np.random.seed(derived)
        torch.manual_seed(derived)
        loader_generator.manual_seed(derived)

    def reduce_train(self, result: EpochResult) -> EpochResult:
        """Loss and accuracy over every rank's samples; time is the slowest rank's."""
        if not self.enabled:
            return result
        sums = torch.tensor([result.loss * result.samples, result.acc * result.samples, result.samples],
                            dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(sums)
        slowest = torch.tensor([result.seconds], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(slowest, op=torch.distributed.ReduceOp.MAX)
        loss_sum, correct, samples = sums.tolist()
        return dataclasses.replace(result, loss=loss_sum / samples, acc=correct / samples, samples=int(samples),
                                   seconds=float(slowest))

    def gather_eval(self, result: EvalResult) -> EvalResult:
        """Every rank's shard of an evaluation, gathered in rank order: the whole split."""
        if not self.enabled:
            return result
        shards: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(
            shards, (result.loss * len(result.targets), result.preds, result.targets, result.logits))
        preds = torch.cat([s[1] for s in shards])
        targets = torch.cat([s[2] for s in shards])
        return dataclasses.replace(result, loss=sum(s[0] for s in shards) / len(targets), preds=preds, targets=targets,
                                   logits=torch.cat([s[3] for s in shards]),
                                   acc=float((preds == targets).float().mean()))

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm running stats) before evaluating, so
        each shard is scored by the model that rank 0 checkpoints."""
        if not self.enabled:
            return
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer, src=0)

    def open_on_main(self, open_run: Callable[[], RunHandle]) -> RunHandle:
        """Rank 0 opens the tracked run; the others learn its id and folder and track nothing."""
        if not self.enabled:
            return open_run()
        from trainlib.tracking import NullTracker
        from trainlib.tracking.open import RunHandle

        handle, failure = None, None
        if self.is_main:
            try:
                handle = open_run()
            except BaseException as exc:  # tell the other ranks, then fail
                failure = exc
        shared = [(handle.run_id, str(handle.run_dir), handle.tracking_uri) if handle else None]
        torch.distributed.broadcast_object_list(shared, src=0)
        if failure is not None:
            raise failure
        if shared[0] is None:
            raise RuntimeError("rank 0 could not open the tracked run; see its error")
        if handle is not None:
            return handle
        run_id, run_dir, uri = shared[0]
        return RunHandle(NullTracker(), run_id, Path(run_dir), uri)


def connect(backend: str, device: torch.device) -> DistContext:
    """Join the process group this process was started in (see the module docstring)."""
    import torch.distributed as td

    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)
    if td.is_available() and td.is_initialized():
        return DistContext(td.get_rank(), td.get_world_size(), device, td.get_backend())
    if not launched_as_worker():
        return DistContext(device=device)
    name = resolve_backend(backend, device.type)
    td.init_process_group(name)  # env://: torchrun's MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
    atexit.register(td.destroy_process_group)
    return DistContext(td.get_rank(), td.get_world_size(), device, name)
