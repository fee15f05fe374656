"""Grad-CAM heat maps over fixed validation images (the seed's hook_for_grad_cam).

A forward hook keeps the layer's activations A; a hook on A's gradient keeps dScore/dA
for the predicted class. CAM = ReLU(sum_c mean_hw(dScore/dA_c) * A_c), upsampled to the
image and scaled to [0, 1] per image as (cam - min) / (max - min), as the tutorial does.
`torch.autograd.grad` drives the backward pass, so the parameters' .grad (which the
training step and the gradient histograms use) is never touched.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainlib.errors import ConfigError
from trainlib.observers import Observer
from trainlib.visual_settings import LayerImages, VISUALS
from trainlib.visuals.images import capture, conv_layers, eval_mode, for_display, grid, pick_layer
from trainlib.visuals.layer_visual import LayerVisual


def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Heat maps (N, 1, H, W) in [0, 1] and the predicted classes (N,)."""
    saved: dict[str, torch.Tensor] = {}

    def keep(module: nn.Module, inputs, output: torch.Tensor) -> None:
        if not output.requires_grad:  # every layer up to here is frozen (finetune.freeze): track from A on
            output.requires_grad_(True)
        saved["act"] = output
        output.register_hook(lambda grad: saved.__setitem__("grad", grad))

    handle = layer.register_forward_hook(keep)
    try:
        with eval_mode(model), torch.enable_grad():
            logits = model(x)
            preds = logits.argmax(1)
            score = logits.gather(1, preds[:, None]).sum()
            torch.autograd.grad(score, saved["act"])
    finally:
        handle.remove()
    act, grad = saved["act"].detach(), saved["grad"].detach()
    cam = F.relu((grad.mean(dim=(2, 3), keepdim=True) * act).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    low = cam.amin(dim=(2, 3), keepdim=True)
    cam = (cam - low) / (cam.amax(dim=(2, 3), keepdim=True) - low).clamp(min=1e-12)
    return cam.cpu(), preds.cpu()


def overlay(images: torch.Tensor, cams: torch.Tensor) -> torch.Tensor:
    """Blend a jet-coloured heat map over each image (both (N, *, H, W) in [0, 1])."""
    from matplotlib import colormaps

    heat = torch.from_numpy(colormaps["jet"](cams[:, 0].numpy())[..., :3]).permute(0, 3, 1, 2).float()
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return 0.5 * images + 0.5 * heat


class GradCam(LayerVisual):
    def draw(self, epoch: int) -> None:
        cams, _ = grad_cam(self.model, self.module, self.images)
        picture = grid(overlay(for_display(self.images), cams))
        self.sink.image(f"gradcam/{self.layer}", picture, epoch, artifact=True)


@VISUALS.register("gradcam")
def gradcam(item: LayerImages, model: nn.Module, sample: torch.Tensor) -> Observer | None:
    layer = cam_layer(model, item.layer, sample, "visuals.gradcam.layer")
    return GradCam(item, layer) if layer else None


def cam_layer(model: nn.Module, name: str | None, sample: torch.Tensor, where: str) -> str | None:
    """The layer Grad-CAM reads (`name`, default: see `block_output`), checked to be spatial; None: no conv layer."""
    convs = list(conv_layers(model))
    layer = pick_layer(model, name, block_output(model, convs[-1], sample) if convs else None, where)
    if layer:
        check_spatial(model, layer, sample, where)
    return layer


def block_output(model: nn.Module, conv: str, sample: torch.Tensor) -> str:
    """The outermost module around the last conv whose output has that conv's shape: the output of the block
    holding it (ResNet34: `layer4`, after the residual sum and its ReLU, not `layer4.2.left.3` inside the residual
    branch); the conv itself when its parent changes the shape (Net: `conv2`)."""
    shape = capture(model, conv, sample).shape
    best, parts = conv, conv.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:depth])
        if capture(model, parent, sample).shape != shape:
            break
        best = parent
    return best


def check_spatial(model: nn.Module, layer: str, sample: torch.Tensor, where: str = "visuals.gradcam.layer") -> None:
    shape = tuple(capture(model, layer, sample).shape)
    if len(shape) != 4:
        raise ConfigError(f"{where} '{layer}' outputs shape {shape}; Grad-CAM needs a layer with "
                          f"(N, C, H, W) output, e.g. a conv layer: {', '.join(conv_layers(model)) or '(none)'}")
