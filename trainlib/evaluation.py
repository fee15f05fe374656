"""Evaluate a saved model on a split (`launch eval`): accuracy, the seed's per-class
recall/precision table and the confusion matrix, optionally recorded in MLflow.

The data, transforms and model come from the checkpoint's own run config; config layers
(`-s key=value`, `--data`) override it (a plain state dict has no config: give the model).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainlib import tags as tag
from trainlib.config import TrainConfig, resolve
from trainlib.data.datasets import build_dataset
from trainlib.distributed import DistContext
from trainlib.engine import evaluate
from trainlib.errors import CheckpointError
from trainlib.finetune import SavedWeights, match, read_weights
from trainlib.losses import build_loss
from trainlib.metrics import confusion_matrix, per_class_report, plot_confusion_matrix
from trainlib.models import build_model
from trainlib.diskspace import check_writable
from trainlib.precision import to_memory_format
from trainlib.startup import config_loaders, pick_device, seed_everything
from trainlib.sources import locate_checkpoint
from trainlib.step_setup import build_execution

SPLITS = ("valid", "test")
FILES = ("per_class_report.txt", "confusion_matrix.png", "eval.json")


@dataclass
class Evaluation:
    source: str
    checkpoint: str
    split: str
    acc: float
    loss: float
    samples: int
    epoch: int | None
    run_id: str | None  # the run the checkpoint belongs to, if known
    out_dir: str
    report: str = field(repr=False)

    def files(self) -> list[Path]:
        return [Path(self.out_dir) / name for name in FILES]


def evaluate_source(source: str, layers: list[dict[str, Any]], split: str = "test",
                    tracking_uri: str | None = None, out_dir: str | None = None) -> tuple[Evaluation, TrainConfig]:
    found = locate_checkpoint(source, tracking_uri, default="best")
    saved = read_weights(found.path)
    cfg = resolve([saved.meta.get("config") or {}, *layers])
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    data = build_dataset(cfg.data)
    model = build_model(cfg.model, data.num_classes, data.in_channels)
    load_exactly(model, saved, found.path, cfg, overridden=bool(layers))
    loader = config_loaders(cfg, data, torch.Generator().manual_seed(cfg.seed), DistContext(device=device))[split]
    execution = build_execution(cfg, device)
    model = to_memory_format(model.to(device), cfg.train.channels_last)
    result = evaluate(model, loader, build_loss(cfg.loss, data.num_classes).to(device), device, execution)
    out = Path(out_dir) if out_dir else found.home / "eval" / f"{split}-{found.path.stem}"
    check_writable(out)
    cm = confusion_matrix(result.preds, result.targets, data.num_classes)
    ev = Evaluation(source, str(found.path), split, result.acc, result.loss, len(result.targets),
                    saved.meta.get("epoch"), found.run_id or saved.meta.get("run_id"), str(out),
                    per_class_report(cm, data.class_names))
    write_outputs(ev, cm, data.class_names)
    return ev, cfg


def load_exactly(model: torch.nn.Module, saved: SavedWeights, path: Path, cfg: TrainConfig,
                 overridden: bool = False) -> None:
    """Load every tensor or refuse in one line; its hint depends on whether -s settings built the model."""
    report = match(model, saved.tensors, str(path), path)
    problems = ([f"{k} has shape {v['source']}, the model {v['model']}" for k, v in report.skipped.items()]
                + [f"{k} is missing" for k in report.missing] + [f"{k} is not in the model" for k in report.unexpected])
    if problems:
        raise CheckpointError(f"{path} does not fit model '{cfg.model['name']}' on data '{cfg.data['name']}' "
                              f"({len(problems)} mismatches, e.g. {problems[0]}); {_fit_hint(overridden)}")
    model.load_state_dict(saved.tensors)


def _fit_hint(overridden: bool) -> str:
    if overridden:  # e.g. -s data.classes=[6,7,8,9] on a 10-class checkpoint
        return ("the -s settings given build another model than the checkpoint's: evaluate it on the data and "
                "classes it was trained on, or finetune it on the new ones first (launch train --finetune SOURCE -s ...)")
    return "give the checkpoint's model and data with -s (e.g. -s model.name=resnet34)"


def write_outputs(ev: Evaluation, cm: torch.Tensor, class_names: list[str]) -> None:
    report_path, plot_path, json_path = ev.files()
    report_path.write_text(ev.report + "\n")
    plot_confusion_matrix(cm, class_names, plot_path, f"{ev.split} confusion matrix (acc {ev.acc:.2%})")
    json_path.write_text(json.dumps({k: v for k, v in vars(ev).items() if k != "report"}, indent=2) + "\n")


def log_evaluation(ev: Evaluation, cfg: TrainConfig, tracking_uri: str | None) -> str:
    """Record in MLflow: on the checkpoint's own run when the store has it (its status is left
    alone), else on a new run; metrics `eval/<split>/acc|loss` at step = the checkpoint's epoch,
    files under artifacts `eval/<split>-<checkpoint>/`. Returns the run id."""
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    from trainlib.tracking.mlflow_tracker import get_or_create_experiment, resolve_tracking_uri
    from trainlib.tracking.mlflow_store import open_store

    uri = resolve_tracking_uri(tracking_uri or cfg.tracking.uri)
    client = open_store(uri, create=True)
    run_id = ev.run_id
    if run_id:
        try:
            client.get_run(run_id)
        except MlflowException:
            run_id = None
    new_run = run_id is None
    if new_run:
        exp = get_or_create_experiment(client, cfg.tracking.experiment, uri)
        run_id = client.create_run(exp, run_name=f"eval-{Path(ev.checkpoint).stem}",
                                   tags={tag.EVAL_SOURCE: ev.source}).info.run_id
    step, now = ev.epoch or 0, int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(f"eval/{ev.split}/acc", ev.acc, now, step),
                                      Metric(f"eval/{ev.split}/loss", ev.loss, now, step)])
    for path in ev.files():
        client.log_artifact(run_id, str(path), f"eval/{Path(ev.out_dir).name}")
    if new_run:
        client.set_terminated(run_id, "FINISHED")
    return run_id
