"""The sweep file's schema (pydantic), validated before Ray starts.

Structure errors name the file line, the key path and the allowed keys/values; loading.py
then checks the search space against the registries by resolving real train configs.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trainlib.errors import ConfigError
from trainlib.validation import (NonNegativeInt, PositiveFloat, PositiveInt, SafeName, refuse_non_finite,
                                 validation_error)
from trainlib.yaml_reader import YamlDocument

# Metrics reported after every epoch: the only ones a scheduler can act on.
EPOCH_METRICS = ("valid/acc", "valid/best_acc", "valid/loss", "train/acc", "train/loss")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dist(_Strict):
    """One search dimension: exactly one distribution, optionally active only `when` others match.

    Numeric ranges follow Ray Tune: randint's high is exclusive, qrandint's inclusive.
    A plain list is shorthand for `choice`.
    """

    choice: list[Any] | None = Field(None, min_length=1, description="[values]: one at random (optuna: its pick)")
    grid: list[Any] | None = Field(None, min_length=1, description="[values]: every one, in every sample")
    uniform: tuple[float, float] | None = Field(None, description="[low, high]")
    quniform: tuple[float, float, PositiveFloat] | None = Field(None, description="[low, high, q]: rounded to q")
    loguniform: tuple[PositiveFloat, PositiveFloat] | None = Field(None, description="[low, high], log scale")
    qloguniform: tuple[PositiveFloat, PositiveFloat, PositiveFloat] | None = Field(
        None, description="[low, high, q], log scale, rounded to q")
    randint: tuple[int, int] | None = Field(None, description="[low, high): an integer, high excluded")
    qrandint: tuple[int, int, PositiveInt] | None = Field(
        None, description="[low, high, q]: a multiple of q, high included")
    lograndint: tuple[PositiveInt, PositiveInt] | None = Field(None, description="[low, high): an integer, log scale")
    normal: tuple[float, PositiveFloat] | None = Field(None, description="[mean, sd]")
    qnormal: tuple[float, PositiveFloat, PositiveFloat] | None = Field(None, description="[mean, sd, q]: rounded to q")
    when: dict[str, list[Any]] | None = Field(None, description="{other.key: value | [values]}: sample only then")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {"choice": value}
        if isinstance(value, dict) and isinstance(value.get("when"), dict):
            when = {k: v if isinstance(v, list) else [v] for k, v in value["when"].items()}
            return {**value, "when": when}
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Dist:
        kinds = [k for k in KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"give exactly one distribution (got {len(kinds)}); allowed: {', '.join(KINDS)}")
        args = self.args
        if self.kind not in ("choice", "grid", "normal", "qnormal") and not args[0] < args[1]:
            raise ValueError(f"{self.kind} needs low < high (got {list(args)})")
        if self.when is not None and (not self.when or not all(self.when.values())):
            raise ValueError("'when' needs at least one key with at least one value")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def args(self) -> list[Any]:
        return list(getattr(self, self.kind))

    @property
    def values(self) -> list[Any] | None:
        """The finite set of values, for choice and grid; None for ranges."""
        return self.args if self.kind in ("choice", "grid") else None

    def describe(self) -> str:
        text = f"{self.kind} {self.args}"
        if self.when:
            text += "  when " + ", ".join(f"{k} in {v}" for k, v in self.when.items())
        return text


KINDS = tuple(name for name in Dist.model_fields if name != "when")


class Fifo(_Strict):
    """Run every trial to the end."""


class Asha(_Strict):
    grace_period: PositiveInt = Field(1, description="epochs before a trial can be stopped")
    reduction_factor: float = Field(3, gt=1, description="keep 1/reduction_factor of trials at each rung")
    brackets: PositiveInt = Field(1, description="ASHA brackets (each a different grace period)")


class Hyperband(_Strict):
    reduction_factor: float = Field(3, gt=1, description="keep 1/reduction_factor of trials at each milestone")


class Median(_Strict):
    grace_period: PositiveInt = Field(1, description="epochs before a trial can be stopped")
    min_samples_required: PositiveInt = Field(3, description="trials needed to compute the median")


class Pbt(_Strict):
    perturbation_interval: PositiveInt = Field(2, description="epochs between exploit/explore steps")
    mutate: list[str] = Field(min_length=1, description="space keys PBT may perturb (resampled from the space)")
    quantile_fraction: float = Field(0.25, gt=0, le=0.5, description="bottom share that copies the top share")
    resample_probability: float = Field(0.25, ge=0, le=1, description="chance to resample instead of perturb")


class SchedulerSpec(_Strict):
    """`fifo`, `asha`, ... or `{asha: {grace_period: 2}}`."""

    fifo: Fifo | None = Field(None, description="run every trial to the end (the default)")
    asha: Asha | None = Field(None, description="asynchronous successive halving: stop weak trials at milestones")
    hyperband: Hyperband | None = Field(None, description="synchronous HyperBand: pause, compare, resume the best")
    median: Median | None = Field(None, description="stop a trial below the median of the others at that epoch")
    pbt: Pbt | None = Field(None, description="population-based training: copy the best, perturb `mutate` keys")

    @model_validator(mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {value: {}}
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _one(self) -> SchedulerSpec:
        chosen = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(chosen) > 1:
            raise ValueError(f"choose one scheduler, not {', '.join(chosen)}")
        return self

    @property
    def name(self) -> str:
        return next((k for k in type(self).model_fields if getattr(self, k) is not None), "fifo")

    @property
    def params(self) -> BaseModel:
        return getattr(self, self.name) or Fifo()


class TuneSpec(_Strict):
    metric: Literal[EPOCH_METRICS] = Field("valid/acc", description="objective, reported every epoch")
    mode: Literal["max", "min"] | None = Field(None, description="default: min for losses, max otherwise")
    num_samples: PositiveInt = Field(8, description="samples from the space (grids are repeated this often)")
    search: Literal["random", "grid", "optuna"] = Field("random", description="grid: choices become grids")
    seed: int | None = Field(None, description="seed of the search algorithm")
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    max_concurrent_trials: PositiveInt | None = Field(None, description="cap; default: as many as resources allow")

    @property
    def resolved_mode(self) -> str:
        return self.mode or ("min" if self.metric.endswith("loss") else "max")


class Resources(_Strict):
    cpu: PositiveFloat = Field(1, description="CPUs per trial (fractions share a CPU); with workers > 1, per worker")
    gpu: float = Field(0, ge=0, description="GPUs per trial (fractions share a GPU); with workers > 1, whole GPUs "
                                            "per worker")
    workers: PositiveInt = Field(1, description="DDP workers per trial: each trial is a Ray Train TorchTrainer job "
                                                "(not with pbt)")

    @model_validator(mode="after")
    def _gpu_shape(self) -> Resources:
        if self.gpu > 1 and self.gpu != int(self.gpu):
            raise ValueError(f"gpu must be a fraction below 1 or a whole number (got {self.gpu})")
        if self.workers > 1 and 0 < self.gpu < 1:
            raise ValueError(f"a DDP trial (workers {self.workers}) needs whole GPUs per worker, not gpu {self.gpu}")
        return self


class Failure(_Strict):
    max_failures: NonNegativeInt = Field(0, description="retries of a failed trial from its last checkpoint")


class Checkpoints(_Strict):
    keep: PositiveInt = Field(2, description="checkpoints Tune keeps per trial")


class Smoke(_Strict):
    """What --smoke shrinks the sweep to."""

    epochs: PositiveInt = Field(2, description="at most this many epochs")
    num_samples: PositiveInt = Field(3, description="at most this many samples (a grid search samples instead)")
    set: dict[str, Any] = Field(default_factory=dict, description="extra dotted overrides of the base config")


class SweepFile(_Strict):
    name: SafeName = Field(description="sweep name (folder and MLflow parent run)")
    description: str | None = Field(None, description="one line on what the sweep asks")
    base: dict[str, Any] | str = Field(default_factory=dict, description="train config, inline or a YAML path")
    space: dict[str, Dist] = Field(min_length=1, description="dotted config key -> distribution")
    tune: TuneSpec = Field(default_factory=TuneSpec)
    resources: Resources = Field(default_factory=Resources)
    failure: Failure = Field(default_factory=Failure)
    checkpoints: Checkpoints = Field(default_factory=Checkpoints)
    smoke: Smoke = Field(default_factory=Smoke)

    @field_validator("space")
    @classmethod
    def _dotted_keys(cls, space: dict[str, Dist]) -> dict[str, Dist]:
        for key in space:
            if not key or any(not part for part in key.split(".")):
                raise ValueError(f"'{key}' is not a dotted config key such as optimizer.lr")
        return space


def parse(doc: YamlDocument) -> SweepFile:
    if not isinstance(doc.data, dict):
        raise doc.error((), f"a sweep file is a mapping with keys {', '.join(SweepFile.model_fields)}")
    try:
        refuse_non_finite(doc.data)
    except ConfigError as exc:
        raise doc.error(exc.keys, str(exc)) from None
    try:
        return SweepFile.model_validate(doc.data)
    except ValidationError as exc:
        error = validation_error(exc, SweepFile, noun="key")
        raise doc.error(error.keys, str(error)) from None
