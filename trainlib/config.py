"""The one train config: schema, layered resolution and validation.

A leaf: it reads the registries' signatures (trainlib.signatures) and the visuals' settings
(trainlib.visual_settings), never their builders, so checking a config imports no torch.

Layers, lowest first: defaults <- YAML file <- `-s dotted.key=value` overrides <- flags.
A family (model, data, init, loss, optimizer, scheduler) is ``{name: ..., **params}``; its
params are checked against the registry entry's signature. When a layer switches a
family's name, the lower layers' params that the new entry does not take are dropped
(``-s optimizer.name=adam`` keeps the lr, forgets SGD's momentum).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from trainlib.live_checks.catalog import CHECK_NAMES
from trainlib.errors import ConfigError
from trainlib.pipelines import BATCH, parse_pipeline
from trainlib.registry import Registry
from trainlib.sections import Section as _Section, flatten  # noqa: F401 (flatten: part of this module's API)
from trainlib.signatures import DATASETS, INITS, LOSSES, MODELS, OPTIMIZERS, SCHEDULERS
from trainlib.validation import SafeName, refuse_non_finite, validation_error
from trainlib.visual_settings import VisualsConfig
from trainlib.yaml_reader import YamlDocument, parse_value, read_mapping

MAX_COUNT = 1_000_000  # epochs, batch size: beyond any real run, far below what overflows
MAX_SEED = 2**32 - 1

FAMILIES: dict[str, Registry] = {
    "model": MODELS,
    "data": DATASETS,
    "init": INITS,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
    "scheduler": SCHEDULERS,
}


class LoaderConfig(_Section):
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes (0: load in the main process)")
    mode: Literal["auto", "memory", "dataloader"] = Field(
        "auto", description="memory: in-memory data augmented on the device; dataloader: per-sample "
                            "pipeline in workers; auto: memory when the data fits and every transform has a device version")


class TransformsConfig(_Section):
    train: list[Any] | None = Field(None, description="train pipeline; null: the dataset's default")
    eval: list[Any] | None = Field(None, description="valid/test pipeline; null: the dataset's default")
    batch: list[Any] | None = Field(None, description="training-batch transforms (mixup, cutmix); null: none")

    @field_validator("train", "eval", mode="before")
    @classmethod
    def _pipeline(cls, value: Any, info) -> list[dict] | None:
        return parse_pipeline(value, f"transforms.{info.field_name}")

    @field_validator("batch", mode="before")
    @classmethod
    def _batch_pipeline(cls, value: Any) -> list[dict] | None:
        return parse_pipeline(value, "transforms.batch", level=BATCH)


class OutputConfig(_Section):
    dir: str = Field("runs", description="root for run folders (checkpoints, TensorBoard logs, config); "
                                         "on a Ray cluster: s3://BUCKET/PATH or a folder every node mounts")
    shared: bool = Field(False, description="output.dir and a SQLite tracking store are on storage every Ray "
                                            "node mounts (the multi-node preflight then accepts them)")


class TrackingConfig(_Section):
    uri: str | None = Field(None, description="MLflow tracking URI; null: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
    experiment: SafeName = Field("launch", description="MLflow experiment name (also its artifact folder's name)")
    run_name: SafeName | None = Field(None, description="MLflow run name (also its run folder's name); "
                                                       "null: generated")
    mlflow: bool = Field(True, description="log to MLflow")
    tensorboard: bool = Field(True, description="write TensorBoardX event files")
    log_model: bool = Field(True, description="log the final model in MLflow's PyTorch format (runs:/<id>/model)")
    server_retry_s: float = Field(60.0, gt=0, description="a tracking server that stops answering mid-run is "
                                                          "retried this long; then the run stops (resume it "
                                                          "once the server is back)")


class FinetuneConfig(_Section):
    source: str | None = Field(None, description="start from these weights: RUN_ID[:best|last], latest[:best|last] "
                                                 "(the newest finished run), a run folder, a checkpoint or a "
                                                 "state-dict file; null: from the init")
    head: str | None = Field(None, description="the classifier head module; null: detected "
                                               "(the last layer with one output per class)")
    head_lr_mult: float = Field(10.0, gt=0, description="the head's lr is optimizer.lr times this")
    default_lr: float = Field(0.001, gt=0, description="optimizer.lr when source is set and no optimizer.lr "
                                                       "was given (the tutorial finetunes at 0.001)")
    freeze: list[str] = Field(default_factory=list, description="module-name prefixes to freeze, "
                                                                "or 'backbone' (all but the head)")
    unfreeze_at_epoch: int | None = Field(None, ge=2, description="train the frozen parameters too from this "
                                                                  "epoch on (optimizer.add_param_group)")

    @field_validator("freeze", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class DistributedConfig(_Section):
    workers: int = Field(1, ge=1, description="data-parallel processes; `launch train` starts them with Ray Train "
                                              "(under torchrun: 1 or torchrun's world size)")
    gpus_per_worker: float = Field(0, ge=0, description="GPUs per Ray Train worker; 0: CPU workers")
    backend: Literal["auto", "gloo", "nccl"] = Field("auto", description="process group: auto = nccl on GPU, gloo on CPU")
    sync_batchnorm: bool = Field(False, description="SyncBatchNorm: batch statistics over the global batch (GPU only)")
    lr_scaling: Literal["none", "linear"] = Field(
        "none", description="none: optimizer.lr is the lr of the global batch (workers x batch_size); linear: lr x workers")

    @model_validator(mode="after")
    def _no_shared_gpus(self) -> "DistributedConfig":
        if self.workers > 1 and not float(self.gpus_per_worker).is_integer():
            raise ConfigError(f"distributed.gpus_per_worker={self.gpus_per_worker:g} with {self.workers} workers: "
                              "DDP workers cannot share a GPU; use a whole number (0, 1, 2, ...) "
                              "or a single worker for a fractional GPU", key="distributed.gpus_per_worker")
        return self


# --- visuals and diagnosis -------------------------------------------------------------

CheckName = Literal[CHECK_NAMES]  # type: ignore[valid-type]


class DiagnoseConfig(_Section):
    enabled: bool = Field(True, description="run the checks during training")
    step0: bool = Field(True, description="check the initial loss, the forward pass and the inputs before the "
                                          "first optimizer step")
    max_activation_std: float = Field(100.0, gt=0, description="a layer's output std at step 0 above this times "
                                                               "the input's is exploding")
    stop_on: list[CheckName] = Field(default_factory=lambda: ["nan", "labels"],
                                     description="checks that end the run (FAILED, with the reason)")
    every_batches: int = Field(50, ge=1, description="sample gradients/activations every N training batches")
    patience: int = Field(3, ge=1, description="epochs a curve check waits before judging")
    max_grad_norm: float = Field(1e3, gt=0, description="a layer's gradient norm above this is exploding")
    min_grad_norm: float = Field(1e-8, ge=0, description="a layer's gradient norm below this is vanishing")
    max_update_ratio: float = Field(1.0, gt=0, description="|update| / |weight| per step above this is too large")
    dead_fraction: float = Field(0.9, gt=0, le=1, description="share of never-active units that makes a layer dead")
    min_loss_drop: float = Field(0.1, ge=0, le=1, description="least relative train-loss drop after `patience` epochs")
    diverge_factor: float = Field(1.5, gt=1, description="train loss above this times its minimum is diverging")
    max_gap: float = Field(0.15, gt=0, le=1, description="train acc minus valid acc above this is overfitting")
    imbalance_ratio: float = Field(5.0, gt=1, description="largest / smallest train class count above this")

# --- end visuals and diagnosis ---------------------------------------------------------


# --- training options (issue 17) -------------------------------------------------------

EARLY_STOP_METRICS = ("valid/loss", "valid/acc", "train/loss", "train/acc")


class EarlyStopConfig(_Section):
    metric: Literal[EARLY_STOP_METRICS] = Field(  # type: ignore[valid-type]
        "valid/loss", description="the epoch metric watched")
    mode: Literal["auto", "min", "max"] = Field("auto", description="min: lower is better; max: higher; "
                                                                    "auto: max for */acc, min for */loss")
    patience: int = Field(5, ge=1, description="epochs without improvement before the run stops")
    min_delta: float = Field(0.0, ge=0, description="an improvement must beat the best by more than this")


class TrainOptions(_Section):
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="autocast dtype for forward and loss (fp16 adds a gradient scaler); weights stay fp32")
    channels_last: bool = Field(False, description="model and image batches in channels_last memory format")
    compile: Literal[False, "default", "reduce-overhead", "max-autotune"] = Field(
        False, description="torch.compile mode for the training model; false: eager")
    tf32: bool = Field(True, description="on CUDA: TF32 tensor cores for fp32 matmuls and convolutions")
    accumulate: int = Field(1, ge=1, description="micro-batches per optimizer step (gradient accumulation): "
                                                 "the step sees accumulate x batch_size samples")
    ema: float | None = Field(None, gt=0, lt=1, description="EMA decay of the weights (e.g. 0.999); the EMA "
                                                            "weights are validated, tested, checkpointed and logged")
    early_stop: EarlyStopConfig | None = Field(None, description="stop when a metric stops improving; null: never")
    max_minutes: float | None = Field(None, gt=0, description="time budget of the training loop; the run stops "
                                                              "after the batch that crosses it; null: none")

    @field_validator("compile", mode="before")
    @classmethod
    def _compile_switch(cls, value: Any) -> Any:
        return {True: "default", None: False}.get(value, value) if isinstance(value, (bool, type(None))) else value

    @field_validator("early_stop", mode="before")
    @classmethod
    def _early_stop_switch(cls, value: Any) -> Any:
        return {True: {}, False: None}.get(value, value) if isinstance(value, bool) else value

# --- end training options --------------------------------------------------------------


def _family_default(name: str) -> Any:
    """A family's built-in default: an entry's name only, so every param is that entry's registry default
    (what `launch catalog` lists); validated like a written value, so the params are filled in."""
    return Field(default_factory=lambda: {"name": name}, validate_default=True)


class TrainConfig(_Section):
    model: dict[str, Any] = _family_default("net")
    data: dict[str, Any] = _family_default("digits")
    loader: LoaderConfig = Field(default_factory=LoaderConfig)
    transforms: TransformsConfig = Field(default_factory=TransformsConfig)
    init: dict[str, Any] = _family_default("initialize_weights")
    loss: dict[str, Any] = _family_default("cross_entropy")
    optimizer: dict[str, Any] = _family_default("sgd")
    scheduler: dict[str, Any] = _family_default("cosine")
    epochs: int = Field(15, ge=1, le=MAX_COUNT, description="training epochs")
    valid_every: int = Field(1, ge=1, le=MAX_COUNT, description="validate every N-th epoch, and at the last epoch "
                                                                "(and the one a run stops at); the tutorial "
                                                                "validates every 2nd")
    batch_size: int = Field(32, ge=1, le=MAX_COUNT, description="batch size per worker: the global batch is "
                                                                "workers x batch_size")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed for weights, shuffling and augmentation "
                                                        "(numpy takes 32-bit seeds)")
    device: str = Field("auto", description="auto (cuda when present), cpu, cuda, cuda:N, mps")
    threads: Literal["auto"] | Annotated[int, Field(ge=1)] = Field(
        "auto", description="torch intra-op threads; auto: a Ray trial's or DDP worker's num_cpus, else "
                            "$OMP_NUM_THREADS, else the CPUs this process may use (its affinity, capped by its "
                            "cgroup CPU quota)")
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    visuals: VisualsConfig = Field(default_factory=VisualsConfig)
    diagnose: DiagnoseConfig = Field(default_factory=DiagnoseConfig)
    train: TrainOptions = Field(default_factory=TrainOptions)
    _notes: dict[str, str] = PrivateAttr(default_factory=dict)  # dotted key -> why it has its value

    @field_validator(*FAMILIES, mode="before")
    @classmethod
    def _family(cls, value: Any, info) -> dict[str, Any]:
        family = info.field_name
        spec = normalize_family(value, family)
        return {"name": spec["name"], **FAMILIES[family].validate(
            spec["name"], {k: v for k, v in spec.items() if k != "name"}, family)}

    @field_validator("threads", mode="before")
    @classmethod
    def _threads(cls, value: Any) -> Any:
        if value is None or value == "auto":  # null: what configs written before "auto" say
            return "auto"
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        raise ConfigError(f"threads must be auto or a whole number >= 1, not {value!r}", key="threads")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        base = value.split(":")[0]
        if base not in ("auto", "cpu", "cuda", "mps"):
            raise ConfigError(f"unknown device '{value}'; valid: auto, cpu, cuda, cuda:N, mps", key="device")
        return value

    @model_validator(mode="after")
    def _soft_targets(self) -> TrainConfig:
        if self.transforms.batch and not accepts_soft_targets(self.loss["name"]):
            raise ConfigError(f"transforms.batch mixes labels into class probabilities, which loss "
                              f"'{self.loss['name']}' cannot take (it needs class ids); use e.g. cross_entropy",
                              key="transforms.batch")
        if self.train.precision == "fp16" and self.optimizer["name"] == "lbfgs":
            raise ConfigError("train.precision=fp16 needs a gradient scaler, which cannot drive lbfgs's "
                              "re-evaluating closure; use bf16 or fp32 with lbfgs", key="train.precision")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """The config as YAML, with a comment on each value that was chosen for the user (see resolve)."""
        lines = yaml.safe_dump(self.to_dict(), sort_keys=False).splitlines()
        for key, note in self._notes.items():
            lines = _annotate(lines, key.split("."), note)
        return "\n".join(lines) + "\n"


def accepts_soft_targets(loss: str) -> bool:
    """Whether a loss takes class probabilities (mixup, cutmix) as well as class ids."""
    return LOSSES.get(loss).meta.get("soft_targets", True)


def normalize_family(value: Any, family: str) -> dict[str, Any]:
    """Accept ``name`` or ``{name: ..., **params}``."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict) and "name" in value:
        return dict(value)
    raise ConfigError(f"'{family}' must be a name or a mapping with 'name', not {value!r}; "
                      f"valid names: {', '.join(FAMILIES[family].names())}", key=family)


def family_line(family: str, spec: dict[str, Any]) -> str:
    """``optimizer: sgd lr=0.05 momentum=0.9 ...``: a family as resolved (unset options, null, left out)."""
    params = " ".join(f"{key}={value}" for key, value in spec.items() if key != "name" and value is not None)
    return f"{family}: {spec['name']} {params}".rstrip()


def default_config_dict() -> dict[str, Any]:
    return {name: copy.deepcopy(field.get_default(call_default_factory=True))
            for name, field in TrainConfig.model_fields.items()
            if name in FAMILIES}


def merge(lower: dict[str, Any], upper: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `upper` over `lower`, switching family names as described above."""
    out = copy.deepcopy(lower)
    for key, value in upper.items():
        if key in FAMILIES and key in out and isinstance(value, (str, dict)):
            out[key] = _merge_family(key, out[key], value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge_family(family: str, lower: Any, upper: Any) -> dict[str, Any]:
    lower = normalize_family(lower, family) if isinstance(lower, (str, dict)) else {}
    upper = {"name": upper} if isinstance(upper, str) else dict(upper)
    new_name = upper.get("name", lower.get("name"))
    if new_name != lower.get("name") and new_name in FAMILIES[family]:
        accepted = FAMILIES[family].get(new_name).params
        lower = {k: v for k, v in lower.items() if k in accepted}
    return {**lower, **upper, "name": new_name}


def parse_override(text: str) -> tuple[str, Any]:
    """`optimizer.lr=0.01` -> ("optimizer.lr", 0.01); the value is read as YAML (never eval'd)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' must look like dotted.key=value, e.g. optimizer.lr=0.01")
    return key, parse_value(raw)


def nest(key: str, value: Any) -> dict[str, Any]:
    """("optimizer.lr", 0.01) -> {"optimizer": {"lr": 0.01}}."""
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def load_yaml(path: str | Path) -> YamlDocument:
    """A `--config` file: a layer for `resolve` whose errors name its file and line."""
    return read_mapping(path)


Layer = dict[str, Any] | YamlDocument


def resolve(layers: list[Layer]) -> TrainConfig:
    """Merge layers (lowest first) over the defaults and validate once.

    An error about a key that a YAML layer set names that file and line. A finetune
    (finetune.source set) whose layers give no optimizer.lr trains at finetune.default_lr:
    the from-scratch default would wreck the loaded weights."""
    merged: dict[str, Any] = default_config_dict()
    plain = [layer.data if isinstance(layer, YamlDocument) else layer for layer in layers]
    for layer in plain:
        merged = merge(merged, layer)
    notes = finetune_lr(merged, plain)
    try:
        cfg = validate(merged)
    except ConfigError as exc:
        doc = _setter(layers, exc.keys)
        if doc is None or exc.located:
            raise
        raise doc.error(exc.keys, str(exc)) from None
    cfg._notes.update(notes)
    return cfg


def finetune_lr(merged: dict[str, Any], layers: list[Any]) -> dict[str, str]:
    """Set finetune.default_lr as optimizer.lr when finetuning and no layer gave an lr; the note to show."""
    finetune = merged.get("finetune")
    given = any(isinstance(layer, dict) and isinstance(layer.get("optimizer"), dict) and "lr" in layer["optimizer"]
                for layer in layers)
    if not isinstance(finetune, dict) or not finetune.get("source") or given:
        return {}
    lr = finetune.get("default_lr", FinetuneConfig.model_fields["default_lr"].default)
    merged["optimizer"] = {**normalize_family(merged["optimizer"], "optimizer"), "lr": lr}
    return {"optimizer.lr": "finetune.default_lr: finetune.source is set and no optimizer.lr was given"}


def _annotate(lines: list[str], path: list[str], note: str) -> list[str]:
    """Append `  # note` to the YAML line of the dotted key `path` (block style, 2-space indent)."""
    depth = 0
    for i, line in enumerate(lines):
        if line.startswith("  " * depth + path[depth] + ":"):
            if depth == len(path) - 1:
                return [*lines[:i], f"{line}  # {note}", *lines[i + 1:]]
            depth += 1
    return lines


def _setter(layers: list[Layer], keys: tuple) -> YamlDocument | None:
    """The YAML layer whose value for `keys` (or its deepest ancestor given) won the merge, if any."""
    for depth in range(len(keys), 0, -1):
        for layer in reversed(layers):
            data = layer.data if isinstance(layer, YamlDocument) else layer
            if _holds(data, keys[:depth]):
                return layer if isinstance(layer, YamlDocument) else None
    return None


def _holds(data: Any, keys: tuple) -> bool:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return False
        data = data[key]
    return True


def validate(data: dict[str, Any]) -> TrainConfig:
    try:
        config = TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, TrainConfig) from None
    refuse_non_finite(config.model_dump())
    return config
