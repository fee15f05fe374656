"""How Grad-CAM on the fixed validation images changes over training, as a TensorBoard video
(tensorboardX's add_video: a GIF, encoded by moviepy): a frame every `every` epochs, written once
at the end. The same maps as `gradcam/<layer>`, which has only the epochs it logs as images."""
from __future__ import annotations

import importlib.util

import torch
from torch import nn

from trainlib.observers import FitContext, Observer
from trainlib.visual_settings import VISUALS, VideoVisual
from trainlib.visuals.gradcam import cam_layer, grad_cam, overlay
from trainlib.visuals.images import for_display, grid
from trainlib.visuals.layer_visual import LayerVisual


class GradCamVideo(LayerVisual):
    item: VideoVisual

    def on_fit_start(self, ctx: FitContext) -> None:
        super().on_fit_start(ctx)
        self.writer, self.echo = ctx.writer, ctx.echo
        self.frames: list[torch.Tensor] = []

    def draw(self, epoch: int) -> None:
        cams, _ = grad_cam(self.model, self.module, self.images)
        self.frames.append(grid(overlay(for_display(self.images), cams)))

    def on_fit_end(self, epoch: int, final: dict[str, float]) -> None:
        if importlib.util.find_spec("moviepy") is None:  # tensorboardX would log an error and write an empty image
            self.echo("note: no Grad-CAM video in TensorBoard: add_video needs moviepy (pip install moviepy)")
            return
        if self.frames:
            video = torch.stack(self.frames)[None]  # (N=1, T, C, H, W) in [0, 1]
            self.writer.add_video(f"gradcam_video/{self.layer}", video, global_step=epoch, fps=self.item.fps)


@VISUALS.register("video")
def video(item: VideoVisual, model: nn.Module, sample: torch.Tensor) -> Observer | None:
    layer = cam_layer(model, item.layer, sample, "visuals.video.layer")
    return GradCamVideo(item, layer) if layer else None
