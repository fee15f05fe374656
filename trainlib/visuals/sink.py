"""Where visuals go: TensorBoard when it is on, and the important ones also as MLflow PNG artifacts."""
from __future__ import annotations

from pathlib import Path

import torch

from trainlib.observers import FitContext

ARTIFACT_DIR = "visuals"


class Sink:
    def __init__(self, ctx: FitContext):
        self.writer = ctx.writer
        self.tracker = ctx.tracker
        self.dir = ctx.run_dir / ARTIFACT_DIR

    def _artifact_path(self, tag: str, step: int) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        return self.dir / f"{tag.replace('/', '_')}_e{step:03d}.png"

    def image(self, tag: str, image: torch.Tensor, step: int, artifact: bool = False) -> None:
        """`image`: (C, H, W) floats in [0, 1]."""
        if self.writer is not None:
            self.writer.add_image(tag, image, step)
        if artifact:
            from torchvision.utils import save_image

            path = self._artifact_path(tag, step)
            save_image(image, path)
            self.tracker.log_artifact(path, ARTIFACT_DIR)

    def figure(self, tag: str, figure, step: int, artifact: bool = False) -> None:
        import matplotlib.pyplot as plt

        if self.writer is not None:
            self.writer.add_figure(tag, figure, step, close=False)
        if artifact:
            path = self._artifact_path(tag, step)
            figure.savefig(path, dpi=100)
            self.tracker.log_artifact(path, ARTIFACT_DIR)
        plt.close(figure)
