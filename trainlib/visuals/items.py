"""Settings shared by several visuals (each visual registers the one it takes, see catalog.py)."""
from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from trainlib.sections import Section


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
