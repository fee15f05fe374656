"""The visuals' settings: the config's `visuals` section and the VISUALS registry's entries, described
without building anything (the config schema is a leaf: it imports this module, never `trainlib.visuals`).

Each visual is described once, below: its name, its settings model, where it writes and what it
shows. The module of `trainlib.visuals` that draws it attaches the builder of its observer by name:

    @VISUALS.register("kernels")
    def kernels(item: KernelsVisual, model: nn.Module, sample: torch.Tensor) -> Observer | None: ...

A builder gets the visual's validated settings, the model and one input batch of the model's
shape; it checks the settings against the model (bad layer names fail there, before any run
opens) and returns None when the model has nothing to show (no conv layer, no linear head).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from pydantic import Field, create_model, model_validator

from trainlib.registry import Entry, Param, Registry
from trainlib.sections import Section

TENSORBOARD = "tensorboard"
MLFLOW = "mlflow"  # as PNG artifacts of the run
DESTINATIONS = (TENSORBOARD, MLFLOW)


class Toggle(Section):
    """A switchable item; `visuals.graph: false` is short for `visuals.graph: {enabled: false}`."""

    enabled: bool = Field(True, description="on/off")

    @model_validator(mode="before")
    @classmethod
    def _from_bool(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value


class EveryEpochs(Toggle):
    every: int = Field(20, ge=1, description="log every N-th epoch, and on the last epoch")


class ImageGrid(EveryEpochs):
    count: int = Field(16, ge=1, description="how many images")


class LayerImages(EveryEpochs):
    count: int = Field(4, ge=1, description="how many fixed validation images")
    layer: str | None = Field(None, description="module name (see model.named_modules()); null: a sensible default")


class KernelsVisual(EveryEpochs):
    max_channels: int = Field(16, ge=1, description="at most this many output (and input) channels per conv layer")


class EmbeddingVisual(Toggle):
    count: int = Field(100, ge=1, description="validation images projected (penultimate features), at the end")


class VideoVisual(LayerImages):
    every: int = Field(1, ge=1, description="a frame every N-th epoch (and the last)")
    fps: float = Field(2.0, gt=0, description="frames per second")


class VisualRegistry(Registry):
    """Visuals described here (settings model = parameters); their modules attach the builders."""

    def describe(self, name: str, settings: type[Section], *, writes: tuple[str, ...] | str,  # type: ignore[override]
                 summary: str) -> None:
        writes = (writes,) if isinstance(writes, str) else tuple(writes)
        unknown = sorted(set(writes) - set(DESTINATIONS))
        if unknown:
            raise ValueError(f"visual '{name}' writes to '{unknown[0]}'; valid: {', '.join(DESTINATIONS)}")
        params = {key: Param(key, info.annotation, info.get_default(call_default_factory=True))
                  for key, info in settings.model_fields.items()}
        super().describe(Entry(name, None, summary, params, {"config": settings, "writes": writes}, frozenset(params)))

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:  # type: ignore[override]
        if name not in self:
            raise ValueError(f"visual '{name}' is not described in trainlib/visual_settings.py")

        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            if self._entries[name].builder is not None:
                raise ValueError(f"visual '{name}' is registered twice")
            self._entries[name] = replace(self._entries[name], builder=fn)
            return fn

        return add


VISUALS = VisualRegistry("visual")
VISUALS.describe("confusion", EveryEpochs, writes=(TENSORBOARD, MLFLOW),
                 summary="confusion matrix figures: valid each logged epoch; train after training (final weights, "
                         "eval mode, as the tutorial's); the epoch's augmented train batches")
VISUALS.describe("embedding", EmbeddingVisual, writes=TENSORBOARD, summary="embedding projector")
VISUALS.describe("feature_maps", LayerImages, writes=TENSORBOARD,
                 summary="feature maps after the ReLU (as the tutorial's 4.3) of a layer (default: the first ReLU "
                         "module, else the first conv) for fixed images")
VISUALS.describe("gradcam", LayerImages, writes=(TENSORBOARD, MLFLOW),
                 summary="Grad-CAM heat maps of a layer (default: the output of the block holding the last conv) "
                         "on fixed valid images")
VISUALS.describe("graph", Toggle, writes=TENSORBOARD, summary="the model graph (add_graph)")
VISUALS.describe("histograms", EveryEpochs, writes=TENSORBOARD, summary="weights and gradients per layer")
VISUALS.describe("hparams", Toggle, writes=TENSORBOARD, summary="config + final metrics in the HParams tab")
VISUALS.describe("inputs", ImageGrid, writes=(TENSORBOARD, MLFLOW),
                 summary="grid of augmented training inputs (what the model sees)")
VISUALS.describe("kernels", KernelsVisual, writes=TENSORBOARD,
                 summary="conv kernels of every conv layer, all in one grid and a row per output channel "
                         "(the tutorial's 4.2)")
VISUALS.describe("pr_curves", EveryEpochs, writes=TENSORBOARD, summary="validation PR curve per class")
VISUALS.describe("scalars_json", Toggle, writes=TENSORBOARD,
                 summary="every scalar of the run in scalars.json (export_scalars_to_json; also an MLflow artifact)")
VISUALS.describe("video", VideoVisual, writes=TENSORBOARD,
                 summary="Grad-CAM of fixed valid images at every epoch as a TensorBoard video (add_video, "
                         "written at the end; needs moviepy); layer default: as gradcam's")


def list_visuals() -> list[str]:
    return VISUALS.names()


def _visuals_config() -> type[Section]:
    """The `visuals` config section: a master switch, then one field per visual."""
    fields: dict[str, Any] = {
        entry.name: (entry.meta["config"], Field(default_factory=entry.meta["config"], description=entry.summary))
        for entry in VISUALS.entries()}
    at_epochs = Field(default_factory=list, description="also draw the visuals at these epochs (a sweep sets its "
                                                        "scheduler's judging epochs)")
    # __module__: where this module binds it (pickling finds the class by that name)
    return create_model("VisualsConfig", __base__=Section, __module__=__name__,
                        enabled=(bool, Field(True, description="master switch for everything below")),
                        at_epochs=(list[int], at_epochs), **fields)


VisualsConfig = _visuals_config()
