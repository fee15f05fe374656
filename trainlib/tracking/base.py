"""The tracker interface and its composite / null implementations."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class Tracker(Protocol):
    def log_params(self, params: dict[str, Any]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...
    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None: ...
    def set_tags(self, tags: dict[str, str]) -> None: ...
    def log_model(self, model: Any, input_example: Any) -> None: ...
    def close(self, status: str) -> None: ...
    def summary_writer(self) -> Any | None:
        """The TensorBoardX SummaryWriter for visuals only TensorBoard shows; None without one."""


class NullTracker:
    """Records nothing (non-zero DDP ranks, tracking switched off)."""

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        pass

    def set_tags(self, tags: dict[str, str]) -> None:
        pass

    def log_model(self, model: Any, input_example: Any) -> None:
        pass

    def close(self, status: str) -> None:
        pass

    def summary_writer(self) -> Any | None:
        return None


class MultiTracker:
    """Fans every call out to several trackers."""

    def __init__(self, trackers: list[Tracker]):
        self.trackers = trackers

    def log_params(self, params: dict[str, Any]) -> None:
        for t in self.trackers:
            t.log_params(params)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for t in self.trackers:
            t.log_metrics(metrics, step)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        for t in self.trackers:
            t.log_artifact(path, artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        for t in self.trackers:
            t.set_tags(tags)

    def log_model(self, model: Any, input_example: Any) -> None:
        for t in self.trackers:
            t.log_model(model, input_example)

    def close(self, status: str) -> None:
        for t in self.trackers:
            t.close(status)

    def summary_writer(self) -> Any | None:
        return next((w for w in (t.summary_writer() for t in self.trackers) if w is not None), None)
