"""What every entry point sets up before it builds a model: seeds, the device, the data
loaders of a config and the run's standard tags (the output folder: trainlib.diskspace).

Used by the training run, `launch eval`, `launch lr-find` and the DDP launcher.
"""
from __future__ import annotations

import random
import subprocess
from typing import Any

import numpy as np
import torch

from trainlib import tags as tag
from trainlib.config import TrainConfig
from trainlib.data.datasets import ImageSplits, transform_specs
from trainlib.data.loaders import build_loaders
from trainlib.distributed import DistContext, launched_as_worker, local_rank
from trainlib.errors import ConfigError
from trainlib.reproduce import package_versions


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' requested but CUDA is not available here; use --device cpu or auto")
    if name == "cuda" and launched_as_worker():  # torchrun: one GPU per worker on each machine
        return torch.device("cuda", local_rank())
    return torch.device(name)


def config_loaders(cfg: TrainConfig, data: ImageSplits, generator: torch.Generator,
                   dist: DistContext) -> dict[str, Any]:
    """The train/valid/test loaders of a config: its transforms (or the dataset's defaults), mode and batch size."""
    return build_loaders(data, transform_specs(cfg), mode=cfg.loader.mode, batch_size=cfg.batch_size,
                         num_workers=cfg.loader.num_workers, generator=generator, device=dist.device, seed=cfg.seed,
                         samplers=dist.samplers(data, cfg.seed))


def run_tags(cfg: TrainConfig, device: torch.device, command: str | None = None) -> dict[str, str]:
    """The tags of every run; `command` is the command line that started it, as the launcher saw it."""
    tags = {tag.SEED: str(cfg.seed), tag.TORCH_VERSION: torch.__version__, tag.DEVICE: str(device),
            tag.MODEL: cfg.model["name"], tag.DATASET: cfg.data["name"],
            tag.THREADS: str(torch.get_num_threads()), **package_versions()}
    if command:
        tags[tag.COMMAND] = command[:5000]
    commit = git_commit()
    if commit:
        tags[tag.GIT_COMMIT] = commit
    if cfg.finetune.source:
        tags[tag.FINETUNE_SOURCE] = cfg.finetune.source
    return tags


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None
