"""Finetune (seed chapters 2.3-2.4): start a new run from saved weights.

The tutorial's recipe, by config (`finetune:`):
- load a state dict and keep the entries whose name and shape match the new model (the
  classifier head, built for the new number of classes, keeps its init);
- give the head a larger learning rate through parameter groups (`head_lr_mult`);
- freeze module prefixes (or the whole `backbone`) and, at `unfreeze_at_epoch`, hand them
  to the optimizer with `add_param_group` (the optimizer chapter's API).

Weights are read with `weights_only=True` only. Finetune starts a NEW run from weights;
`--resume` continues the SAME run with its optimizer state.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from trainlib.checkpoint import load_safely
from trainlib.errors import CheckpointError, ConfigError
from trainlib import optimizers
from trainlib.sources import locate_checkpoint

if TYPE_CHECKING:
    from trainlib.config import TrainConfig
    from trainlib.schedulers import LRSchedule
    from trainlib.tracking import Tracker

BACKBONE = "backbone"  # the word for "everything but the head" in finetune.freeze
GROUP_BACKBONE, GROUP_HEAD, GROUP_UNFROZEN = "backbone", "head", "unfrozen"
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DistributedDataParallel, torch.compile


@dataclass
class LoadReport:
    """Which tensors of the source state dict went into the model."""

    source: str
    path: str
    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # shape mismatch
    missing: list[str] = field(default_factory=list)  # in the model, not in the source
    unexpected: list[str] = field(default_factory=list)  # in the source, not in the model

    def lines(self) -> list[str]:
        where = "" if self.path == self.source else f" ({self.path})"
        out = [f"finetune from {self.source}{where}",
               f"loaded {len(self.loaded)} tensors, skipped {len(self.skipped)} (shape mismatch), "
               f"missing {len(self.missing)}, unexpected {len(self.unexpected)}"]
        out += [f"  skipped {k}: source {v['source']} vs model {v['model']}" for k, v in self.skipped.items()]
        out += [f"  missing {k} (keeps its init)" for k in self.missing]
        out += [f"  unexpected {k} (ignored)" for k in self.unexpected]
        return out


@dataclass
class Finetune:
    """A run's finetune setup: its head, its frozen parameters and what was loaded."""

    head: str
    head_lr_mult: float
    frozen: list[str]
    unfreeze_at_epoch: int | None
    report: LoadReport | None
    no_decay_bias_norm: bool = False

    def build_optimizer(self, spec: dict[str, Any], model: nn.Module) -> torch.optim.Optimizer:
        """The optimizer's groups (trainable parameters only), named `backbone` at optimizer.lr and
        `head` at lr x head_lr_mult, each with its `lr_mult` (no_decay_bias_norm splits them further)."""
        optimizer = optimizers.build_optimizer(spec, model, {self.head: self.head_lr_mult})
        head_ids = {id(p) for name, p in model.named_parameters() if under(name, self.head)}
        for group in optimizer.param_groups:
            in_head = id(group["params"][0]) in head_ids
            group["name"] = GROUP_HEAD if in_head else GROUP_BACKBONE
            group["lr_mult"] = self.head_lr_mult if in_head else 1.0
        return optimizer

    def unfreeze_if_due(self, epoch: int, model: nn.Module, schedule: LRSchedule) -> int:
        """At `unfreeze_at_epoch`, train the frozen parameters too; returns how many were added."""
        due = self.unfreeze_at_epoch is not None and epoch >= self.unfreeze_at_epoch
        if not due or any(g.get("name") == GROUP_UNFROZEN for g in schedule.optimizer.param_groups):
            return 0
        frozen = set(self.frozen)
        params = [p for name, p in model.named_parameters() if name in frozen]
        no_decay = optimizers.bias_and_norm_ids(model) if self.no_decay_bias_norm else set()
        decay = {k: v for k, v in schedule.optimizer.defaults.items() if k == "weight_decay"}
        for param in params:
            param.requires_grad_(True)
        for chunk, settings in (([p for p in params if id(p) not in no_decay], decay),
                                ([p for p in params if id(p) in no_decay], {"weight_decay": 0.0})):
            if chunk:
                schedule.add_param_group({"name": GROUP_UNFROZEN, "params": chunk, "lr_mult": 1.0, **settings})
        return len(params)

    def summary(self) -> list[str]:
        lines = [f"head: {self.head} (lr x {self.head_lr_mult:g})"]
        if self.frozen:
            until = f" until epoch {self.unfreeze_at_epoch}" if self.unfreeze_at_epoch else ""
            modules = dict.fromkeys(name.split(".")[0] for name in self.frozen)
            lines.append(f"frozen: {len(self.frozen)} parameter tensors in {', '.join(modules)}{until}")
        return (self.report.lines() if self.report else []) + lines

    def record(self, tracker: Tracker, run_dir: Path, echo: Callable[[str], None]) -> None:
        """Print the report and log it as MLflow artifacts (finetune_report.txt / .json)."""
        text = "\n".join(self.summary())
        echo(text)
        (run_dir / "finetune_report.txt").write_text(text + "\n")
        (run_dir / "finetune_report.json").write_text(json.dumps(asdict(self), indent=2) + "\n")
        for name in ("finetune_report.txt", "finetune_report.json"):
            tracker.log_artifact(run_dir / name)


def prepare(cfg: TrainConfig, model: nn.Module, num_classes: int, load: bool = True) -> Finetune | None:
    """Load the source weights and freeze as configured; None when the run is no finetune.

    `load=False` (resuming a finetune run) sets up head and freezing without re-reading the
    source: the resumed checkpoint holds the weights.
    """
    spec = cfg.finetune
    if spec.unfreeze_at_epoch is not None and (not spec.freeze or spec.unfreeze_at_epoch > cfg.epochs):
        raise ConfigError(f"finetune.unfreeze_at_epoch={spec.unfreeze_at_epoch} needs finetune.freeze and "
                          f"must be <= epochs ({cfg.epochs})")
    if not spec.source and not spec.freeze:
        return None
    head = spec.head or detect_head(model, num_classes)
    check_prefix(model, head, "finetune.head")
    report = load_weights(model, spec.source, cfg.tracking.uri, cfg.model["name"]) if spec.source and load else None
    frozen = freeze(model, spec.freeze, head)
    no_decay = optimizers.OPTIMIZERS.shared_values(cfg.optimizer)["no_decay_bias_norm"]
    return Finetune(head, spec.head_lr_mult, frozen, spec.unfreeze_at_epoch, report, no_decay)


@dataclass
class SavedWeights:
    """A state dict read from a file, and the other entries of our checkpoints (config, run_id, epoch...)."""

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]


def read_weights(path: Path) -> SavedWeights:
    """Our checkpoint, a plain state dict (also DDP / torch.compile ones) or a {"state_dict": ...} file."""
    obj = load_safely(path)
    meta: dict[str, Any] = {}
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                meta = {k: v for k, v in obj.items() if k != key}
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise CheckpointError(f"{path} holds no state dict (a mapping of parameter names to tensors), "
                              f"but a {type(obj).__name__}")
    for prefix in WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in obj):
            obj = {k.removeprefix(prefix): v for k, v in obj.items()}
    return SavedWeights(obj, meta)


def load_weights(model: nn.Module, source: str, tracking_uri: str | None, model_name: str) -> LoadReport:
    found = locate_checkpoint(source, tracking_uri, default="best")
    saved = read_weights(found.path)
    report = match(model, saved.tensors, source, found.path)
    if not report.loaded:
        trained_as = (saved.meta.get("config") or {}).get("model", {}).get("name")
        hint = f"; it was trained as model '{trained_as}' (use --model {trained_as})" if trained_as else ""
        raise CheckpointError(f"no tensor of {source} fits model '{model_name}' by name and shape{hint}")
    model.load_state_dict({k: saved.tensors[k] for k in report.loaded}, strict=False)
    return report


def match(model: nn.Module, weights: dict[str, torch.Tensor], source: str, path: Path) -> LoadReport:
    report = LoadReport(source, str(path))
    for key, own in model.state_dict().items():
        if key not in weights:
            report.missing.append(key)
        elif weights[key].shape != own.shape:
            report.skipped[key] = {"source": list(weights[key].shape), "model": list(own.shape)}
        else:
            report.loaded.append(key)
    own_keys = model.state_dict().keys()
    report.unexpected = [k for k in weights if k not in own_keys]
    return report


def detect_head(model: nn.Module, num_classes: int) -> str:
    """The last Linear/Conv2d layer with one output per class (net: fc3, resnets: fc, ...)."""
    found = [name for name, m in model.named_modules()
             if (isinstance(m, nn.Linear) and m.out_features == num_classes)
             or (isinstance(m, nn.Conv2d) and m.out_channels == num_classes)]
    if not found:
        raise ConfigError(f"cannot tell this model's classifier head; set finetune.head "
                          f"(modules: {', '.join(top_modules(model))})")
    return found[-1]


def freeze(model: nn.Module, prefixes: list[str], head: str) -> list[str]:
    """Freeze the parameters under `prefixes` (`backbone`: all but the head); returns their names."""
    for prefix in prefixes:
        if prefix != BACKBONE:
            check_prefix(model, prefix, "finetune.freeze")
    names = [n for n, _ in model.named_parameters()]
    frozen = [n for n in names if any(under(n, p) if p != BACKBONE else not under(n, head) for p in prefixes)]
    if frozen and len(frozen) == len(names):
        raise ConfigError(f"finetune.freeze {prefixes} freezes every parameter; nothing would train")
    for name, param in model.named_parameters():
        if name in frozen:
            param.requires_grad_(False)
    return frozen


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def check_prefix(model: nn.Module, prefix: str, key: str) -> None:
    if not any(under(n, prefix) for n, _ in model.named_parameters()):
        valid = ", ".join(([BACKBONE] if key == "finetune.freeze" else []) + top_modules(model))
        raise ConfigError(f"{key}: '{prefix}' names no module with parameters; valid: {valid} (or dotted sub-modules)")


def top_modules(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_children() if any(True for _ in m.parameters())]
