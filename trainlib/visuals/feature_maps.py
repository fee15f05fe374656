"""Feature maps of one layer for a few fixed validation images (seed 4.3): a row per image.

Shown after a ReLU, as the tutorial draws them (`F.relu(net.conv1(x))`): Net applies F.relu
functionally, so there is no ReLU module to hook; on a ReLU module's output it changes nothing."""
from __future__ import annotations

import torch

from trainlib.visuals.images import capture, for_display, grid
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
        maps = capture(self.model, self.layer, self.images).relu()
        self.sink.image(f"feature_maps/{self.layer}", feature_map_grid(maps), epoch)
