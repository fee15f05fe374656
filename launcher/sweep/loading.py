"""Load a sweep file into a `Sweep`: structure, base config, and the space checked against
the registries by resolving real trial configs, all before Ray starts."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from launcher.sweep import space as sp
from launcher.sweep.judging import judging_epochs
from launcher.sweep.schema import Dist, SweepFile, parse
from trainlib.config import TrainConfig, flatten, merge, nest, resolve
from trainlib.errors import ConfigError, UserError
from trainlib.yaml_reader import YamlDocument, read_mapping, read_yaml

COMBINATION_LIMIT = 512


@dataclass(frozen=True)
class Sweep:
    file: SweepFile
    base: dict[str, Any]  # the resolved train config every trial starts from
    source: Path
    smoke: bool = False

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def metric(self) -> str:
        return self.file.tune.metric

    @property
    def mode(self) -> str:
        return self.file.tune.resolved_mode

    @property
    def epochs(self) -> int:
        return int(self.base["epochs"])

    def active(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        return sp.active_sample(self.file.space, sample, flatten(self.base))

    def trial_config(self, sample: Mapping[str, Any], **forced: Any) -> TrainConfig:
        """The train config of one trial: base <- the sampled values that apply <- `forced` dotted keys;
        its visuals are also drawn where the scheduler judges it."""
        judged = {"visuals": {"at_epochs": judging_epochs(self.file.tune.scheduler, self.epochs)}}
        return resolve([self.base, judged, dotted_layer(self.active(sample)), dotted_layer(forced)])

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file.model_dump(mode="json", exclude_none=True), "base": self.base,
                "source": str(self.source), "smoke": self.smoke}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sweep:
        return cls(SweepFile.model_validate(data["file"]), data["base"], Path(data["source"]), data["smoke"])


def dotted_layer(values: Mapping[str, Any]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for key, value in values.items():
        layer = merge(layer, nest(key, value))
    return layer


def load_sweep(path: str | Path, layers: Iterable[dict[str, Any]] = (), smoke: bool = False) -> Sweep:
    """Parse and check a sweep file; `layers` (from -s and flags) go over its base config."""
    doc = read_yaml(path, "sweep file")
    spec = parse(doc)
    base_doc = _base_document(doc, spec)
    base = pin_source(_resolve_base(base_doc, list(layers)), base_doc)
    check_space(doc, spec, base)
    check_tune(doc, spec, base)
    check_resources(doc, spec)
    sweep = Sweep(spec, base.to_dict(), Path(path))
    return shrink(sweep, doc) if smoke else sweep


def _base_document(doc: YamlDocument, spec: SweepFile) -> YamlDocument:
    """The base config with its own line numbers: the inline section, or the file it names."""
    if isinstance(spec.base, str):
        base_path = (doc.path.parent / spec.base)
        if not base_path.is_file():
            raise doc.error(("base",), f"base config file not found: {base_path}")
        return read_mapping(base_path, "base config file")
    section = doc.section("base")
    section.data = spec.base
    return section


def _resolve_base(base_doc: YamlDocument, layers: list[dict[str, Any]]) -> TrainConfig:
    tracking = base_doc.data.get("tracking")
    if isinstance(tracking, dict) and tracking.get("mlflow") is False:
        raise base_doc.error(("tracking", "mlflow"), "a sweep records every trial in MLflow; leave tracking.mlflow on")
    return resolve([base_doc, *layers])


def pin_source(base: TrainConfig, base_doc: YamlDocument) -> TrainConfig:
    """Every trial finetunes the same weights: `latest` becomes that run's id now, and a source
    that cannot be found fails here, before Ray starts."""
    source = base.finetune.source
    if not source:
        return base
    from trainlib.sources import LATEST, locate_checkpoint, split_choice  # imports torch: only for a source

    try:
        found = locate_checkpoint(source, base.tracking.uri)
    except UserError as exc:
        raise base_doc.error(("finetune", "source"), str(exc)) from None
    name, choice = split_choice(source, "best")
    if name != LATEST or found.run_id is None:
        return base
    return resolve([base.to_dict(), {"finetune": {"source": f"{found.run_id}:{choice}"}}])


def check_space(doc: YamlDocument, spec: SweepFile, base: TrainConfig) -> None:
    base_flat = flatten(base.to_dict())
    for index, (key, dist) in enumerate(spec.space.items()):
        where = ("space", key)
        earlier = dict(list(spec.space.items())[:index])
        _check_condition(doc, where, dist, earlier, base_flat)
        _check_search(doc, where, dist, spec)
        context = {k: v[0] for k, v in (dist.when or {}).items()}
        for value in sp.extremes(dist):
            _check_resolves(doc, where, base, {**context, key: value})
    combos, total = sp.combinations(spec.space, COMBINATION_LIMIT)
    for combo in combos:
        active = sp.active_sample(spec.space, combo, base_flat)
        _check_resolves(doc, ("space",), base, active, label="the trial")


def _check_condition(doc: YamlDocument, where: tuple, dist: Dist, earlier: Mapping[str, Dist],
                     base_flat: Mapping[str, Any]) -> None:
    for key, allowed in (dist.when or {}).items():
        if key in earlier:
            choices = earlier[key].values
            never = [v for v in allowed if choices is not None and v not in choices]
            if never:
                raise doc.error(where + ("when", key), f"{key} never takes {never}; its values: {choices}")
        elif key not in base_flat:
            raise doc.error(where + ("when", key),
                            f"'{key}' is neither a space key above this one nor a base config key")
        elif base_flat[key] not in allowed:
            raise doc.error(where + ("when", key), f"never active: the base config has {key}={base_flat[key]!r}")


def _check_search(doc: YamlDocument, where: tuple, dist: Dist, spec: SweepFile) -> None:
    search = spec.tune.search
    if search == "optuna" and dist.kind not in sp.OPTUNA_KINDS:
        raise doc.error(where + (dist.kind,), f"'{dist.kind}' does not work with search: optuna; "
                                              f"allowed there: {', '.join(sp.OPTUNA_KINDS)}")
    if search == "grid" and dist.values is None:
        raise doc.error(where + (dist.kind,), f"search: grid needs finite values (choice or grid), not "
                                              f"'{dist.kind}'; or use search: random / optuna")


def _check_resolves(doc: YamlDocument, where: tuple, base: TrainConfig, values: dict[str, Any],
                    label: str = "value") -> None:
    try:
        resolve([base.to_dict(), dotted_layer(values)])
    except ConfigError as exc:
        shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
        raise doc.error(where, f"{label} {{{shown}}} gives an invalid train config: {exc}") from None


def check_tune(doc: YamlDocument, spec: SweepFile, base: TrainConfig) -> None:
    if base.valid_every > 1 and spec.tune.metric.startswith("valid/"):
        raise doc.error(("base", "valid_every"), f"{base.valid_every}: the sweep judges each trial on "
                        f"{spec.tune.metric} at every epoch; use valid_every: 1 in a sweep, or a train/ metric")
    scheduler = spec.tune.scheduler
    params = scheduler.params
    for field in ("grace_period", "perturbation_interval"):
        value = getattr(params, field, None)
        if value is not None and value > base.epochs:
            raise doc.error(("tune", "scheduler", scheduler.name, field),
                            f"{value} exceeds the trials' {base.epochs} epochs")
    if scheduler.name == "pbt":
        if spec.tune.search == "optuna":
            raise doc.error(("tune", "scheduler"), "pbt picks its own values; use it with search: random or grid")
        for i, key in enumerate(params.mutate):
            dist = spec.space.get(key)
            if not _mutable(key, dist, spec.tune.search):
                valid = [k for k, d in spec.space.items() if _mutable(k, d, spec.tune.search)]
                raise doc.error(("tune", "scheduler", "pbt", "mutate", i),
                                f"'{key}' must be a sampled, unconditional space key that is not a family name "
                                f"(a checkpoint cannot change optimizer); allowed: {', '.join(valid) or '(none)'}")


def check_resources(doc: YamlDocument, spec: SweepFile) -> None:
    if spec.resources.workers > 1 and spec.tune.scheduler.name == "pbt":
        raise doc.error(("resources", "workers"), f"{spec.resources.workers}: pbt moves Tune checkpoints between "
                        f"trials, and a DDP trial's checkpoints live in its Ray Train run; use workers: 1 with pbt, "
                        f"or scheduler fifo, asha, hyperband or median")


def _mutable(key: str, dist: Dist | None, search: str) -> bool:
    """What PBT may perturb in a running trial."""
    return dist is not None and not dist.when and not sp.grid_kind(dist, search) and not key.endswith(".name")


def shrink(sweep: Sweep, doc: YamlDocument) -> Sweep:
    """--smoke: a few short trials of the same sweep (grids become choices, epochs cut)."""
    spec, smoke = sweep.file, sweep.file.smoke
    epochs = min(sweep.epochs, smoke.epochs)
    space = {k: (Dist(choice=d.args, when=d.when) if d.kind == "grid" else d) for k, d in spec.space.items()}
    scheduler, params = spec.tune.scheduler, spec.tune.scheduler.params
    fitted = {f: min(getattr(params, f), epochs)
              for f in ("grace_period", "perturbation_interval") if hasattr(params, f)}
    samples = smoke.num_samples if spec.tune.search == "grid" else min(spec.tune.num_samples, smoke.num_samples)
    tune = spec.tune.model_copy(update={
        "num_samples": samples,
        "search": "random" if spec.tune.search == "grid" else spec.tune.search,
        "scheduler": scheduler.model_copy(update={scheduler.name: params.model_copy(update=fitted)}),
    })
    try:
        base = resolve([sweep.base, dotted_layer(smoke.set), {"epochs": epochs}])
    except ConfigError as exc:
        raise doc.error(("smoke", "set"), str(exc)) from None
    return replace(sweep, file=spec.model_copy(update={"space": space, "tune": tune}), base=base.to_dict(), smoke=True)


def with_samples(sweep: Sweep, num_samples: int) -> Sweep:
    if num_samples < 1:
        raise ConfigError(f"--num-samples must be at least 1 (got {num_samples})")
    tune = sweep.file.tune.model_copy(update={"num_samples": num_samples})
    return replace(sweep, file=sweep.file.model_copy(update={"tune": tune}))
