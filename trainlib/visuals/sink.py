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
            path = self._artifact_path(tag, step)
            save_png(image, path)
            self.tracker.log_artifact(path, ARTIFACT_DIR)


def save_png(image: torch.Tensor, path: Path) -> None:
    """(C, H, W) floats in [0, 1] -> PNG, with light compression (the default level costs ~5x more)."""
    from PIL import Image

    pixels = image.detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    pixels = pixels.expand(3, -1, -1) if pixels.shape[0] == 1 else pixels
    Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(path, compress_level=1)
