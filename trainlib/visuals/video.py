"""How Grad-CAM on the fixed validation images changes over training, as a TensorBoard video
(tensorboardX's add_video: a GIF, encoded by moviepy): a frame every `every` epochs, written once
at the end. The same maps as `gradcam/<layer>`, which has only the epochs it logs as images."""
from __future__ import annotations

import importlib.util

import torch

from trainlib.config import VideoVisual
from trainlib.engine import EvalResult
from trainlib.observers import FitContext, Observer
from trainlib.visuals.gradcam import grad_cam, overlay
from trainlib.visuals.images import fixed_samples, for_display, grid


class GradCamVideo(Observer):
    def __init__(self, item: VideoVisual, layer: str, count: int):
        self.item = item
        self.layer = layer
        self.count = count  # the Grad-CAM images' count: the same images
        self.frames: list[torch.Tensor] = []

    def on_fit_start(self, ctx: FitContext) -> None:
        self.writer = ctx.writer
        self.echo = ctx.echo
        self.model = ctx.model
        self.module = dict(ctx.model.named_modules())[self.layer]
        self.due = ctx.due
        self.images = fixed_samples(ctx.loaders["valid"], self.count)[0].to(ctx.device)

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
