"""Reproducing a run: what it needs besides its config (recorded as tags on every run), and
whether a reproduction's metrics match the original's.

On a CPU the same config, seed and packages give bit-identical metrics, so they must be equal;
on a GPU some kernels are not deterministic, so each value may differ by GPU_TOLERANCE
(relative, at least 1 in absolute terms). Timings (`time/...`) are not compared.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from trainlib import tags as tag

UNCOMPARED_PREFIXES = ("time/",)
GPU_TOLERANCE = 0.02
ENVIRONMENT_TAGS = {"torch": tag.TORCH_VERSION, **tag.PACKAGE_VERSIONS, "device": tag.DEVICE,
                    "torch threads": tag.THREADS, "git commit": tag.GIT_COMMIT}  # compared, by their name here


def package_versions() -> dict[str, str]:
    """Tag -> installed version of torchvision, ray, mlflow and launch (those installed; torch has its own tag)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist, name in tag.PACKAGE_VERSIONS.items():
        try:
            found[name] = version(dist)
        except PackageNotFoundError:
            continue
    return found


def tolerance_for(device: str) -> float:
    return 0.0 if device.startswith("cpu") else GPU_TOLERANCE


@dataclass(frozen=True)
class Difference:
    metric: str
    step: int
    original: float | None  # None: the run did not log it
    reproduced: float | None

    def line(self) -> str:
        return (f"first difference: {self.metric} at step {self.step}: original {_text(self.original)}, "
                f"reproduced {_text(self.reproduced)}")


@dataclass
class Comparison:
    original_id: str
    reproduced_id: str
    tolerance: float
    values: int  # metric values compared
    first: Difference | None
    environment: list[str] = field(default_factory=list)  # "ray: 2.59.0 -> 2.60.0"

    @property
    def matched(self) -> bool:
        return self.first is None

    def lines(self) -> list[str]:
        how = "bit for bit" if self.tolerance == 0 else f"within a relative tolerance of {self.tolerance:g} (GPU)"
        if self.matched:
            lines = [f"reproduced: {self.values} metric values of run {self.original_id} match {how}"]
        else:
            lines = [f"not reproduced: the metrics of run {self.reproduced_id} differ from run {self.original_id} "
                     f"(compared {how})", self.first.line()]
        return lines + [f"environment differs: {d}" for d in self.environment]


def compare_runs(client, original_id: str, reproduced_id: str, tolerance: float) -> Comparison:
    """Every metric's history of the two runs, step by step (timings excepted), and their environment tags."""
    original, reproduced = client.get_run(original_id), client.get_run(reproduced_id)
    a, b = histories(client, original), histories(client, reproduced)
    return Comparison(original_id, reproduced_id, tolerance, sum(len(h) for h in a.values()),
                      first_difference(a, b, tolerance),
                      environment_differences(original.data.tags, reproduced.data.tags))


def histories(client, run) -> dict[str, dict[int, float]]:
    """Metric -> step -> value (the latest where a step was logged twice)."""
    found = {}
    for key in run.data.metrics:
        if key.startswith(UNCOMPARED_PREFIXES):
            continue
        ordered = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: (m.step, m.timestamp))
        found[key] = {m.step: m.value for m in ordered}
    return found


def first_difference(a: dict[str, dict[int, float]], b: dict[str, dict[int, float]],
                     tolerance: float) -> Difference | None:
    """The earliest step (then the first metric by name) where the two differ or one has no value."""
    cells = sorted({(step, key) for runs in (a, b) for key, steps in runs.items() for step in steps})
    for step, key in cells:
        x, y = a.get(key, {}).get(step), b.get(key, {}).get(step)
        if not same(x, y, tolerance):
            return Difference(key, step, x, y)
    return None


def same(x: float | None, y: float | None, tolerance: float) -> bool:
    if x is None or y is None:
        return x is y
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if tolerance == 0:
        return x == y
    return abs(x - y) <= tolerance * max(1.0, abs(x))


def environment_differences(original: dict[str, str], reproduced: dict[str, str]) -> list[str]:
    return [f"{name}: {original.get(key, '(not recorded)')} -> {reproduced.get(key, '(not recorded)')}"
            for name, key in ENVIRONMENT_TAGS.items() if original.get(key) != reproduced.get(key)]


def _text(value: float | None) -> str:
    return "(not logged)" if value is None else repr(value)
