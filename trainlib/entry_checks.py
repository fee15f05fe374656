"""Checks of a registry entry's parameters taken together (`check=` on its registration): each
returns why the combination is refused, or None. Kept apart from the builders, without torch,
so that `trainlib.signatures` (and so the config) runs them without building anything."""
from __future__ import annotations

from typing import Any


def stem(stem: str) -> str | None:
    """models: resnet34."""
    return None if stem in ("cifar", "imagenet") else f"stem must be cifar or imagenet, not {stem!r}"


def one_gain(*, gain: float, nonlinearity: str | None, **_) -> str | None:
    """inits: xavier_uniform, xavier_normal, orthogonal."""
    if nonlinearity is not None and gain != 1.0:
        return f"set gain ({gain:g}) or nonlinearity ({nonlinearity}: gain = calculate_gain), not both"
    return None


def digit_classes(classes: list[int] | None = None, **_) -> str | None:
    """datasets: digits."""
    if classes is not None and (len(set(classes)) != len(classes) or len(classes) < 2
                                or not all(0 <= c <= 9 for c in classes)):
        return f"classes must be at least 2 distinct digits 0-9, not {classes}"
    return None


def cifar_valid_ratio(valid_ratio: float, **_) -> str | None:
    """datasets: cifar10."""
    return "valid_ratio must be strictly between 0 and 1" if valid_ratio in (0, 1) else None


def samples_per_class(num_samples: int, num_classes: int, **_) -> str | None:
    """datasets: fake."""
    if num_samples < 10 * num_classes:
        return f"num_samples must be at least 10 x num_classes ({10 * num_classes}) so every split gets every class"
    return None


def hue(*, hue: float, **_) -> str | None:
    """transforms: color_jitter."""
    return None if 0.0 <= hue <= 0.5 else f"hue must be in [0, 0.5], not {hue}"


def choice_weights(*, transforms: list[Any], p: list[float] | None, **_) -> str | None:
    """transforms: random_choice."""
    if not transforms:
        return "needs at least one transform in 'transforms'"
    if p is not None and len(p) != len(transforms):
        return f"p has {len(p)} weights for {len(transforms)} transforms"
    return None


def nested(*, transforms: list[Any], **_) -> str | None:
    """transforms: random_apply, random_order."""
    return None if transforms else "needs at least one transform in 'transforms'"
