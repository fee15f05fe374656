"""The VISUALS registry: each visual module registers its name, its settings model (a section of
`visuals` in the config), where it writes, and a builder of its observer.

    @VISUALS.register("kernels", KernelsVisual, writes=TENSORBOARD, summary="conv kernels of every conv layer")
    def kernels(item: KernelsVisual, model: nn.Module, sample: torch.Tensor) -> Observer | None: ...

A builder gets the visual's validated settings, the model and one input batch of the model's
shape; it checks the settings against the model (bad layer names fail here, before any run
opens) and returns None when the model has nothing to show (no conv layer, no linear head).
`VisualsConfig` (the config's `visuals` section) is made from the entries: see `visuals_config`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from pydantic import Field, create_model

from trainlib.registry import Param, Registry
from trainlib.sections import Section

if TYPE_CHECKING:
    import torch
    from torch import nn

    from trainlib.config import TrainConfig
    from trainlib.observers import Observer

TENSORBOARD = "tensorboard"
MLFLOW = "mlflow"  # as PNG artifacts of the run
DESTINATIONS = (TENSORBOARD, MLFLOW)


class VisualRegistry(Registry):
    """A Registry whose entries' parameters are the fields of their settings model."""

    def register(self, name: str, config: type[Section], *, writes: tuple[str, ...] | str,  # type: ignore[override]
                 summary: str):
        writes = (writes,) if isinstance(writes, str) else tuple(writes)
        unknown = sorted(set(writes) - set(DESTINATIONS))
        if unknown:
            raise ValueError(f"visual '{name}' writes to '{unknown[0]}'; valid: {', '.join(DESTINATIONS)}")
        add = super().register(name, summary, config=config, writes=writes)

        def add_with_settings(fn: Callable[..., Any]) -> Callable[..., Any]:
            add(fn)
            entry = self._entries[name]
            params = {key: Param(key, info.annotation, info.get_default(call_default_factory=True))
                      for key, info in config.model_fields.items()}
            self._entries[name] = type(entry)(entry.name, entry.builder, entry.summary, params, entry.meta,
                                              frozenset(params))
            return fn

        return add_with_settings


VISUALS = VisualRegistry("visual")


def list_visuals() -> list[str]:
    return VISUALS.names()


def visuals_config() -> type[Section]:
    """The `visuals` config section: a master switch, then one field per registered visual."""
    fields: dict[str, Any] = {
        entry.name: (entry.meta["config"], Field(default_factory=entry.meta["config"], description=entry.summary))
        for entry in VISUALS.entries()}
    # __module__: where the package binds it (pickling finds the class by that name)
    return create_model("VisualsConfig", __base__=Section, __module__="trainlib.visuals",
                        enabled=(bool, Field(True, description="master switch for everything below")), **fields)


def build_visuals(cfg: TrainConfig, model: nn.Module, sample: torch.Tensor) -> dict[str, Observer]:
    """Visual name -> its observer, for every visual the config switches on that can write
    somewhere (TensorBoard, or MLflow for those that are also PNG artifacts)."""
    v = cfg.visuals
    if not v.enabled:
        return {}
    open_to = {TENSORBOARD: cfg.tracking.tensorboard, MLFLOW: cfg.tracking.mlflow}
    observers = {}
    for entry in VISUALS.entries():
        item = getattr(v, entry.name)
        if item.enabled and any(open_to[where] for where in entry.meta["writes"]):
            observer = entry.builder(item, model, sample)
            if observer is not None:
                observers[entry.name] = observer
    return observers
