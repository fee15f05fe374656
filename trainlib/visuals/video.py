"""How Grad-CAM on the fixed validation images changes over training, as a TensorBoard video
(tensorboardX's add_video: a GIF, encoded by moviepy): a frame every `every` epochs, written once
at the end. The same maps as `gradcam/<layer>`, which has only the epochs it logs as images."""
from __future__ import annotations

import importlib.util

import torch

from pydantic import Field
from torch import nn

from trainlib.engine import EvalResult
from trainlib.observers import FitContext, Observer
from trainlib.visuals.catalog import TENSORBOARD, VISUALS
from trainlib.visuals.gradcam import check_spatial, grad_cam, overlay
from trainlib.visuals.images import conv_layers, fixed_samples, for_display, grid, pick_layer
from trainlib.visuals.items import LayerImages


class VideoVisual(LayerImages):
    every: int = Field(1, ge=1, description="a frame every N-th epoch (and the last)")
    fps: float = Field(2.0, gt=0, description="frames per second")


class GradCamVideo(Observer):
    def __init__(self, item: VideoVisual, layer: str):
        self.item = item
        self.layer = layer
        self.frames: list[torch.Tensor] = []

    def on_fit_start(self, ctx: FitContext) -> None:
        self.writer = ctx.writer
        self.echo = ctx.echo
        self.model = ctx.model
        self.module = dict(ctx.model.named_modules())[self.layer]
        self.due = ctx.due
        self.images = fixed_samples(ctx.loaders["valid"], self.item.count)[0].to(ctx.device)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], valid: EvalResult) -> None:
        if self.due(epoch, self.item.every):
            cams, _ = grad_cam(self.model, self.module, self.images)
            self.frames.append(grid(overlay(for_display(self.images), cams)))

    def on_fit_end(self, epoch: int, final: dict[str, float]) -> None:
        if importlib.util.find_spec("moviepy") is None:  # tensorboardX would log an error and write an empty image
            self.echo("note: no Grad-CAM video in TensorBoard: add_video needs moviepy (pip install moviepy)")
            return
        if self.frames:
            video = torch.stack(self.frames)[None]  # (N=1, T, C, H, W) in [0, 1]
            self.writer.add_video(f"gradcam_video/{self.layer}", video, global_step=epoch, fps=self.item.fps)


@VISUALS.register("video", VideoVisual, writes=TENSORBOARD,
                  summary="Grad-CAM of fixed valid images at every epoch as a TensorBoard video (add_video, "
                          "written at the end; needs moviepy); layer default: the last conv")
def video(item: VideoVisual, model: nn.Module, sample: torch.Tensor) -> Observer | None:
    convs = list(conv_layers(model))
    layer = pick_layer(model, item.layer, convs[-1] if convs else None, "visuals.video.layer")
    if not layer:
        return None
    check_spatial(model, layer, sample)
    return GradCamVideo(item, layer)
