"""Where visuals go: TensorBoard when it is on, and the important ones also as MLflow PNG artifacts.

Each image is encoded to PNG once, with light compression, and the same bytes go to both.
tensorboardX's `add_image` would re-encode at PIL's default level after a no-op LANCZOS
resize: ~10x slower, enough on its own to break the visuals' 5% budget on a small run.
"""
from __future__ import annotations

import io
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
        """`image`: (C, H, W) floats in [0, 1], C 1 (gray) or 3 (RGB)."""
        if self.writer is None and not artifact:
            return
        png = encode_png(image)
        if self.writer is not None:
            write_png_summary(self.writer, tag, png, image.shape, step)
        if artifact:
            path = self._artifact_path(tag, step)
            path.write_bytes(png)
            self.tracker.log_artifact(path, ARTIFACT_DIR)


def encode_png(image: torch.Tensor) -> bytes:
    """(C, H, W) floats in [0, 1] -> PNG bytes (compress level 1: the default costs ~5x more)."""
    from PIL import Image

    pixels = image.detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    array = pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).numpy()
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def write_png_summary(writer, tag: str, png: bytes, shape: torch.Size, step: int) -> None:
    """What `writer.add_image` writes, from bytes already encoded."""
    from tensorboardX.proto.summary_pb2 import Summary

    from trainlib.compat import add_summary

    channels, height, width = shape
    picture = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=png)
    add_summary(writer, Summary(value=[Summary.Value(tag=tag, image=picture)]), step)
