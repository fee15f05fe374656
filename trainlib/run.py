"""`run(config)`: the one entry point for a training run.

`launch train`, the Ray Tune trainable, the Ray Train worker and the tests all call it.
It builds everything from the validated config *before* opening the tracking run, so bad
input never leaves a run behind; a run that fails or is interrupted ends FAILED/KILLED.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from trainlib import checkpoint as ckpt
from trainlib import lease
from trainlib import tags as tag
from trainlib.config import TrainConfig, family_line, flatten, validate
from trainlib.data.datasets import ImageSplits, build_dataset, transform_specs
from trainlib.live_checks.observer import DiagnoseObserver
from trainlib.distributed import DistContext, connect
from trainlib.ema import ModelEma
from trainlib.engine import EvalResult, StepOptions, evaluate, train_one_epoch
from trainlib.finetune import Finetune, prepare as prepare_finetune
from trainlib.heap import startup, startup_done
from trainlib.inits import apply_init
from trainlib.losses import build_loss
from trainlib.metrics import confusion_matrix, per_class_report, plot_confusion_matrix
from trainlib.models import build_model
from trainlib.observers import FitContext, Observer, Observers, due
from trainlib.optimizers import build_optimizer
from trainlib.precision import Execution, compiled, to_memory_format
from trainlib.shape_check import check_shapes
from trainlib.resume import ResumePoint
from trainlib.schedulers import LRSchedule, build_scheduler
from trainlib.startup import config_loaders, pick_device, run_tags, seed_everything
from trainlib.step_setup import build_execution, build_step_options, optimizer_steps
from trainlib.stopping import Stops
from trainlib.output_location import publish
from trainlib.threads import use_cpu_threads
from trainlib.tracking import Tracker
from trainlib.tracking.open import RunHandle, closing, open_trackers
from trainlib.transforms import TransformContext, build_batch_transform
from trainlib.visuals import build_visuals


@dataclass
class Parts:
    cfg: TrainConfig
    device: torch.device
    data: ImageSplits
    loaders: dict[str, Any]
    loader_generator: torch.Generator
    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    train_model: nn.Module  # `model`, wrapped in DistributedDataParallel under DDP
    dist: DistContext
    observers: Observers  # visuals, diagnosis, then the caller's
    batch_transform: Callable | None = None
    finetune: Finetune | None = None
    execution: Execution | None = None
    step: StepOptions = field(default_factory=StepOptions)

    @property
    def ema(self) -> ModelEma | None:
        return self.step.ema

    @property
    def eval_model(self) -> nn.Module:
        """What is validated, tested, checkpointed as `model` and logged: the EMA weights when on."""
        return self.ema.module if self.ema else self.model


@dataclass
class TrainingState:
    epoch: int = 0
    best_valid_acc: float = float("-inf")
    stops: Stops | None = None  # from the checkpoint on resume, else from the config when fit starts


def run(config: TrainConfig | dict, *, resume: ResumePoint | None = None, observers: Sequence[Observer] = (),
        progress: bool = True, echo: Callable[[str], None] = print,
        tags: dict[str, str] | None = None, command: str | None = None,
        summary: bool = True) -> dict[str, float]:
    """Train, validate each epoch, test at the end; returns the final metrics.

    Under DDP (see trainlib.distributed) every rank calls this; rank 0 alone tracks and writes.
    `tags` are set on the run, new or resumed (e.g. `mlflow.parentRunId` nests it under a sweep);
    `command` is the command line that started it (the `launch.command` tag), given by the launcher.
    `observers` watch it after the config's visuals and diagnosis (e.g. the Ray reporter, on every rank).
    `summary=False` leaves the closing lines (run id, folder, UI hints) to a caller that prints them itself."""
    with startup():
        cfg = config if isinstance(config, TrainConfig) else validate(config)
        dist = connect(cfg.distributed.backend, pick_device(cfg.device))
        cfg = dist.record_world(cfg)
        parts = build_parts(cfg, dist, load_weights=resume is None, observers=observers)
        state = TrainingState()
        if resume is not None:
            state = restore(parts, resume)
        if not dist.is_main:
            echo, progress = (lambda _: None), False
        handle = dist.open_on_main(lambda: open_run(parts, resume, state.epoch, tags or {}, command))
        startup_done()
        try:
            with closing(handle.tracker, checkpoint_files(handle.run_dir)):
                final = fit(parts, state, handle, progress, echo)
        finally:
            if dist.is_main:
                lease.release(handle.run_dir)
    if summary:
        for line in handle.summary():
            echo(line)
    return final


def fit(parts: Parts, state: TrainingState, handle: RunHandle, progress: bool,
        echo: Callable[[str], None]) -> dict[str, float]:
    cfg, tracker, run_dir = parts.cfg, handle.tracker, handle.run_dir
    ckpt_dir = run_dir / "checkpoints"
    if state.epoch == 0 and parts.dist.is_main:
        config_path = run_dir / "config.yaml"
        config_path.write_text(cfg.to_yaml())
        tracker.log_params(flatten(cfg.to_dict()))
        tracker.log_artifact(config_path)
        if parts.finetune:
            parts.finetune.record(tracker, run_dir, echo)
    for family in ("optimizer", "scheduler"):
        echo(family_line(family, getattr(cfg, family)))
    parts.observers.on_fit_start(FitContext(cfg, parts.model, parts.device, parts.data, parts.loaders,
                                            parts.optimizer, tracker, run_dir, echo, state.epoch, handle.run_id))
    stops = state.stops = state.stops or Stops(cfg.train)
    stops.start()
    first_epoch = state.epoch + 1  # a compiled model compiles in this session's first step
    for epoch in range(first_epoch, cfg.epochs + 1):
        unfreeze_if_due(parts, epoch, echo)
        metrics, valid = train_and_validate(parts, epoch, progress, stops.deadline,
                                            time_first_step=bool(cfg.train.compile) and epoch == first_epoch)
        metrics.update(parts.observers.epoch_metrics())
        state.epoch = epoch
        reason = stops.after_epoch(epoch, metrics)
        if reason and valid is None:  # a run ends on a validated epoch: its best checkpoint exists
            valid = validate_into(parts, metrics)
        if valid is not None and metrics["valid/acc"] > state.best_valid_acc:
            state.best_valid_acc = metrics["valid/acc"]
            save_checkpoint(parts, state, ckpt_dir / ckpt.BEST, handle.run_id)
        if valid is not None:
            metrics["valid/best_acc"] = state.best_valid_acc
        tracker.log_metrics(metrics, step=epoch)  # before the checkpoint: a kill in between re-logs, never loses
        save_checkpoint(parts, state, ckpt_dir / ckpt.LAST, handle.run_id)
        for step, lr in parts.schedule.pop_step_lrs():
            tracker.log_metrics({"lr/step": lr}, step=step)
        echo(epoch_line(epoch, cfg.epochs, metrics))
        parts.observers.on_epoch_end(epoch, metrics, valid)
        if reason:
            tracker.set_tags({tag.STOP_REASON: reason})
            echo(f"stopped: {reason}")
            break
    final = finish(parts, state, tracker, run_dir, echo)
    if parts.dist.is_main and (published := publish(run_dir, cfg.output.dir)):
        tracker.set_tags({tag.RUN_URI: published})
        echo(f"run folder copied to {published} (its checkpoints are the run's MLflow artifacts)")
    if cfg.tracking.log_model and handle.tracking_uri:
        log_final_model(parts, handle, echo)
    return final


def train_and_validate(parts: Parts, epoch: int, progress: bool, deadline: float | None = None,
                       time_first_step: bool = False) -> tuple[dict[str, float], EvalResult | None]:
    """Train one epoch, then validate when `valid_every` says so (else no valid/* metrics and no EvalResult)."""
    parts.loaders["train"].sampler.set_epoch(epoch)
    parts.dist.seed_epoch(parts.cfg.seed, epoch, parts.loader_generator)
    lrs = learning_rates(parts.optimizer)
    train = train_one_epoch(parts.train_model, parts.loaders["train"], parts.loss_fn, parts.optimizer, parts.schedule,
                            parts.device, desc=f"epoch {epoch}/{parts.cfg.epochs}", progress=progress,
                            batch_transform=parts.batch_transform, on_batch=parts.observers.batch_hook,
                            options=parts.step, deadline=deadline, time_first_step=time_first_step)
    train = parts.dist.reduce_train(train)
    metrics = {"train/loss": train.loss, "train/acc": train.acc, **lrs, "time/epoch_s": train.seconds,
               "time/img_per_s": train.img_per_s}
    valid = validate_into(parts, metrics) if due(epoch, parts.cfg.valid_every, parts.cfg.epochs) else None
    if time_first_step:
        metrics["time/compile_s"] = train.warmup_seconds
    parts.schedule.after_epoch(metrics)
    return metrics, valid


def validate_into(parts: Parts, metrics: dict[str, float]) -> EvalResult:
    """Validate, adding valid/loss and valid/acc to `metrics`."""
    valid = evaluate_split(parts, "valid")
    metrics.update({"valid/loss": valid.loss, "valid/acc": valid.acc})
    return valid


def finish(parts: Parts, state: TrainingState, tracker: Tracker, run_dir: Path,
           echo: Callable[[str], None]) -> dict[str, float]:
    test = evaluate_split(parts, "test")
    cm = confusion_matrix(test.preds, test.targets, parts.data.num_classes)
    report = per_class_report(cm, parts.data.class_names)
    final = {"test/loss": test.loss, "test/acc": test.acc, "valid/best_acc": state.best_valid_acc}
    tracker.log_metrics(final, step=state.epoch)
    parts.observers.on_fit_end(state.epoch, final)
    if parts.dist.is_main:
        (run_dir / "per_class_report.txt").write_text(report + "\n")
        plot_confusion_matrix(cm, parts.data.class_names, run_dir / "confusion_matrix.png",
                              f"test confusion matrix (acc {test.acc:.2%})")
    for name in ("per_class_report.txt", "confusion_matrix.png"):
        tracker.log_artifact(run_dir / name)
    for path in checkpoint_files(run_dir):
        tracker.log_artifact(path, "checkpoints")
    echo(f"test loss {test.loss:.4f}  test acc {test.acc:.2%}")
    echo(report)
    return final



# --- helpers ----------------------------------------------------------------------------------


def checkpoint_files(run_dir: Path) -> list[Path]:
    """The checkpoints a run keeps as MLflow artifacts (under `checkpoints/`)."""
    return [run_dir / "checkpoints" / name for name in (ckpt.BEST, ckpt.LAST)]

def build_parts(cfg: TrainConfig, dist: DistContext | None = None, load_weights: bool = True,
                observers: Sequence[Observer] = ()) -> Parts:
    """Every part of a run; `load_weights=False` skips the finetune source (a resume restores them)."""
    dist = dist or DistContext(device=pick_device(cfg.device))
    device = dist.device
    use_cpu_threads(cfg.threads)
    seed_everything(cfg.seed)
    data = build_dataset(cfg.data)
    generator = torch.Generator().manual_seed(cfg.seed)
    loaders = config_loaders(cfg, data, generator, dist)
    model = build_model(cfg.model, data.num_classes, data.in_channels)
    check_shapes(transform_specs(cfg), data, model, cfg.model["name"])
    apply_init(cfg.init, model)
    tuning = prepare_finetune(cfg, model, data.num_classes, load=load_weights)
    execution = build_execution(cfg, device)
    to_memory_format(model.to(device), cfg.train.channels_last)
    train_model = compiled(dist.prepare(model, cfg.distributed.sync_batchnorm), cfg.train.compile)
    optimizer = tuning.build_optimizer(cfg.optimizer, model) if tuning else build_optimizer(cfg.optimizer, model)
    dist.scale_lr(optimizer, cfg.distributed.lr_scaling)
    schedule = build_scheduler(cfg.scheduler, optimizer, cfg.epochs,
                               optimizer_steps(len(loaders["train"]), cfg.train.accumulate))
    loss_fn = build_loss(cfg.loss, data.num_classes).to(device)
    batch_transform = build_batch_transform(cfg.transforms.batch, TransformContext.from_splits(data))
    sample = torch.zeros(1, data.in_channels, data.image_size, data.image_size, device=device)
    watching = build_observers(cfg, model, sample, dist.is_main, observers)
    return Parts(cfg, device, data, loaders, generator, model, loss_fn, optimizer, schedule, train_model, dist,
                 watching, batch_transform, tuning, execution, build_step_options(cfg, model, execution))


def build_observers(cfg: TrainConfig, model: nn.Module, sample: torch.Tensor, is_main: bool = True,
                    extra: Sequence[Observer] = ()) -> Observers:
    """The visuals and diagnosis a config asks for, then `extra` (diagnosis after the visuals: its
    stop comes after they drew; the caller's last: they see an epoch only once it passed the checks).

    Under DDP only rank 0 (`is_main`) draws visuals: it alone has a writer. Every rank diagnoses:
    most checks read the all-reduced gradients and weights, so all ranks stop at the same step."""
    observers = list(build_visuals(cfg, model, sample).values()) if is_main else []
    if cfg.diagnose.enabled:
        observers.append(DiagnoseObserver(cfg.diagnose))
    return Observers([*observers, *extra])


def restore(parts: Parts, point: ResumePoint) -> TrainingState:
    state = point.state
    parts.model.load_state_dict(state.get("raw_model", state["model"]))
    if parts.ema:
        parts.ema.load_state_dict(state["model"])
    unfreeze_if_due(parts, int(state["epoch"]), echo=lambda _: None)
    parts.optimizer.load_state_dict(state["optimizer"])
    parts.schedule.load_state_dict(state["scheduler"])
    if state.get("scaler"):
        parts.step.scaler.load_state_dict(state["scaler"])
    ckpt.restore_rng(state["rng"], parts.loader_generator)
    return TrainingState(epoch=int(state["epoch"]), best_valid_acc=float(state["best_valid_acc"]),
                    stops=Stops(parts.cfg.train, state.get("stops")))


def open_run(parts: Parts, resume: ResumePoint | None, start_epoch: int, extra_tags: dict[str, str],
             command: str | None) -> RunHandle:
    """Open the run (new or resumed) holding its lease (trainlib.lease), a resumed run's before its
    record is touched; released by `run`. A DDP job's driver (launch train) holds a resumed run's."""
    tags = run_tags(parts.cfg, parts.device, command) | parts.dist.tags(parts.cfg) | extra_tags
    if resume is not None and not parts.dist.enabled:
        lease.acquire(resume.run_dir, resume.run_id)
    handle = open_trackers(parts.cfg, tags, resume, start_epoch)
    if resume is None:
        lease.acquire(handle.run_dir, handle.run_id)
    if resume is not None and extra_tags:  # a resumed run keeps its first tags: refresh the caller's
        handle.tracker.set_tags(extra_tags)
    return handle


def unfreeze_if_due(parts: Parts, epoch: int, echo: Callable[[str], None]) -> None:
    if parts.finetune and (count := parts.finetune.unfreeze_if_due(epoch, parts.model, parts.schedule)):
        # DDP all-reduces only the parameters that were trainable when it wrapped the model: wrap anew
        parts.train_model = compiled(parts.dist.prepare(parts.model, sync_batchnorm=False), parts.cfg.train.compile)
        echo(f"epoch {epoch}: unfroze {count} parameter tensors (optimizer.add_param_group)")


def learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """`lr` (the base lr: group 0's lr over its multiplier) and `lr/<name>` for each named group."""
    first = optimizer.param_groups[0]
    lrs = {"lr": first["lr"] / first.get("lr_mult", 1.0)}
    lrs.update({f"lr/{g['name']}": g["lr"] for g in optimizer.param_groups if "name" in g})
    return lrs


def evaluate_split(parts: Parts, split: str) -> EvalResult:
    """Evaluate `split` as a whole (under DDP: each rank its shard, gathered)."""
    parts.dist.broadcast_buffers(parts.eval_model)
    shard = evaluate(parts.eval_model, parts.loaders[split], parts.loss_fn, parts.device, parts.execution)
    return parts.dist.gather_eval(shard)


def save_checkpoint(parts: Parts, state: TrainingState, path: Path, run_id: str) -> None:
    if not parts.dist.is_main:
        return
    ckpt.save_atomic({
        "model": parts.eval_model.state_dict(),
        **({"raw_model": parts.model.state_dict()} if parts.ema else {}),
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.schedule.state_dict(),
        "scaler": parts.step.scaler.state_dict() if parts.step.scaling else {},
        "stops": state.stops.state_dict() if state.stops else {},
        "epoch": state.epoch,
        "best_valid_acc": state.best_valid_acc,
        "rng": ckpt.rng_state(parts.loader_generator),
        "config": parts.cfg.to_dict(),
        "num_classes": parts.data.num_classes,
        "class_names": parts.data.class_names,
        "run_id": run_id,
    }, path)


def epoch_line(epoch: int, epochs: int, m: dict[str, float]) -> str:
    valid = f"valid loss {loss(m['valid/loss'])} acc {m['valid/acc']:.2%}" if "valid/acc" in m else "(not validated)"
    return (f"epoch {epoch:>3}/{epochs}  train loss {loss(m['train/loss'])} acc {m['train/acc']:.2%}  "
            f"{valid}  lr {m['lr']:.4g}  {m['time/epoch_s']:.1f}s  {rate(m['time/img_per_s'])} img/s")


def loss(value: float) -> str:
    """4 decimals; a huge (diverged) loss in 4 significant digits (8.8e+31, not a 32-digit number)."""
    return f"{value:.4f}" if abs(value) < 1e6 else f"{value:.4g}"


def rate(per_second: float) -> str:
    """Whole numbers, but 3 significant digits below 100 (a big model on a CPU: 0.31, not 0)."""
    return f"{per_second:,.0f}" if per_second >= 100 else f"{per_second:.3g}"


def log_final_model(parts: Parts, handle: RunHandle, echo: Callable[[str], None]) -> None:
    """The final model in MLflow's PyTorch format; a model torch.export cannot trace is only a warning."""
    from trainlib.visuals.images import one_view

    example = one_view(next(iter(parts.loaders["test"]))[0][:2])
    start = time.perf_counter()
    try:
        handle.tracker.log_model(parts.eval_model, example)
    except Exception as exc:  # training succeeded; do not fail the run over its MLflow model copy
        handle.tracker.set_tags({tag.LOG_MODEL_ERROR: f"{type(exc).__name__}: {exc}"[:5000]})
        echo(f"warning: model not logged to MLflow ({type(exc).__name__}: {str(exc)[:200]})")
        return
    echo(f"MLflow model:    runs:/{handle.run_id}/model  ({time.perf_counter() - start:.1f}s to log)")
