"""Feature maps of one layer for a few fixed validation images (seed 4.3): a row per image."""
from __future__ import annotations

import torch
from torch import nn

from trainlib.observers import Observer
from trainlib.visuals.catalog import TENSORBOARD, VISUALS
from trainlib.visuals.images import capture, conv_layers, for_display, grid, pick_layer
from trainlib.visuals.items import LayerImages
from trainlib.visuals.layer_visual import LayerVisual

MAX_MAPS = 16  # channels shown per image


def feature_map_grid(maps: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) activations (or (N, F) features) -> a grid with one row of channels per image."""
    if maps.dim() == 2:
        maps = maps[:, None, None, :]
    maps = maps[:, :MAX_MAPS].float().cpu()
    n, c = maps.shape[:2]
    return grid(for_display(maps.reshape(n * c, 1, *maps.shape[2:])), nrow=c)


class FeatureMaps(LayerVisual):
    def draw(self, epoch: int) -> None:
        maps = capture(self.model, self.layer, self.images)
        self.sink.image(f"feature_maps/{self.layer}", feature_map_grid(maps), epoch)


@VISUALS.register("feature_maps", LayerImages, writes=TENSORBOARD,
                  summary="feature maps of a layer (default: first conv) for fixed images")
def feature_maps(item: LayerImages, model: nn.Module, sample: torch.Tensor) -> Observer | None:
    convs = list(conv_layers(model))
    layer = pick_layer(model, item.layer, convs[0] if convs else None, "visuals.feature_maps.layer")
    return FeatureMaps(item, layer) if layer else None
