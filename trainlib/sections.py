"""What every part of the train config is built from, kept apart from `trainlib.config` so the
parts defined next to their code (each visual's settings) need not import the whole config."""
from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from trainlib.validation import refuse_bool_as_number


class Section(BaseModel):
    """A config section: unknown keys are refused, values are frozen once validated, and true/false
    is no number (pydantic would read `batch_size: true` as 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value: Any, info) -> Any:
        if isinstance(value, bool):
            refuse_bool_as_number(value, cls.model_fields[info.field_name].annotation)
        return value


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config -> {"optimizer.lr": 0.01, ...}; lists become JSON text."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat
