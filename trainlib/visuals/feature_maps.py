"""Feature maps of one layer for a few fixed validation images (seed 4.3): a row per image.

Shown after a ReLU, as the tutorial draws them (`F.relu(net.conv1(x))`): Net applies F.relu
functionally, so there is no ReLU module to hook; on a ReLU module's output it changes nothing.
Beside them (`feature_maps/raw`, the tutorial's 'raw img') the same images de-normalized, as
its `normalize_invert` does: x * std + mean of the eval pipeline's last `normalize`."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainlib.data.datasets import transform_specs
from trainlib.observers import FitContext, Observer
from trainlib.visual_settings import LayerImages, VISUALS
from trainlib.visuals.images import capture, conv_layers, for_display, grid, pick_layer
from trainlib.visuals.layer_visual import LayerVisual

MAX_MAPS = 16  # channels shown per image


def feature_map_grid(maps: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) activations (or (N, F) features) -> a grid with one row of channels per image."""
    if maps.dim() == 2:
        maps = maps[:, None, None, :]
    maps = maps[:, :MAX_MAPS].float().cpu()
    n, c = maps.shape[:2]
    return grid(for_display(maps.reshape(n * c, 1, *maps.shape[2:])), nrow=c)


def denormalized(images: torch.Tensor, eval_specs: list[dict], data: Any) -> torch.Tensor:
    """The images as pixels in [0, 1]: normalize undone (its mean/std, else the data's); a pipeline without
    normalize (e.g. ZCA whitening) has nothing to undo: its images are only scaled for display."""
    norms = [spec for spec in eval_specs if spec["name"] == "normalize"]
    if not norms:
        return for_display(images)
    mean, std = (torch.tensor(norms[-1][key] or getattr(data, key)).view(-1, 1, 1) for key in ("mean", "std"))
    return (images.float().cpu() * std + mean).clamp(0, 1)


class FeatureMaps(LayerVisual):
    def on_fit_start(self, ctx: FitContext) -> None:
        super().on_fit_start(ctx)
        self.raw = grid(denormalized(self.images, transform_specs(ctx.config)["eval"], ctx.data))

    def draw(self, epoch: int) -> None:
        maps = capture(self.model, self.layer, self.images).relu()
        self.sink.image(f"feature_maps/{self.layer}", feature_map_grid(maps), epoch)
        self.sink.image("feature_maps/raw", self.raw, epoch)


@VISUALS.register("feature_maps")
def feature_maps(item: LayerImages, model: nn.Module, sample: torch.Tensor) -> Observer | None:
    relus = [name for name, m in model.named_modules() if isinstance(m, nn.ReLU)]
    convs = list(conv_layers(model))
    first_activation = relus[0] if relus else convs[0] if convs else None
    layer = pick_layer(model, item.layer, first_activation, "visuals.feature_maps.layer")
    return FeatureMaps(item, layer) if layer else None
