"""Build the visual observers a config asks for; bad layer names fail here, before any run opens."""
from __future__ import annotations

import torch
from torch import nn

from trainlib.config import TrainConfig
from trainlib.errors import ConfigError
from trainlib.observers import Observer
from trainlib.visuals.confusion import ConfusionFigure
from trainlib.visuals.embedding import Embedding
from trainlib.visuals.feature_maps import FeatureMaps
from trainlib.visuals.gradcam import GradCam
from trainlib.visuals.graph import Graph
from trainlib.visuals.histograms import Histograms
from trainlib.visuals.hparams import HParams
from trainlib.visuals.images import capture, conv_layers, pick_layer
from trainlib.visuals.inputs import InputsGrid
from trainlib.visuals.kernels import ConvKernels
from trainlib.visuals.pr_curves import PrCurves
from trainlib.visuals.scalars_json import ScalarsJson
from trainlib.visuals.video import GradCamVideo


def build_visuals(cfg: TrainConfig, model: nn.Module, sample: torch.Tensor) -> list[Observer]:
    """`sample`: one input batch of the model's shape (to check that a Grad-CAM layer is spatial)."""
    v = cfg.visuals
    if not v.enabled or not (cfg.tracking.tensorboard or cfg.tracking.mlflow):
        return []
    convs = list(conv_layers(model))
    relus = [name for name, m in model.named_modules() if isinstance(m, nn.ReLU)]
    first_activation = relus[0] if relus else convs[0] if convs else None
    feature_layer = pick_layer(model, v.feature_maps.layer, first_activation, "visuals.feature_maps.layer")
    cam_layer = pick_layer(model, v.gradcam.layer, convs[-1] if convs else None, "visuals.gradcam.layer")
    observers: list[Observer] = []
    # these also go to MLflow as PNG artifacts
    if v.inputs.enabled:
        observers.append(InputsGrid(v.inputs))
    if cam_layer and (v.gradcam.enabled or v.video.enabled):
        check_spatial(model, cam_layer, sample)
    if v.gradcam.enabled and cam_layer:
        observers.append(GradCam(v.gradcam, cam_layer))
    if v.confusion.enabled:
        observers.append(ConfusionFigure(v.confusion))
    if not cfg.tracking.tensorboard:
        return observers
    # the rest only TensorBoard shows
    heads = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if v.kernels.enabled and convs:
        observers.append(ConvKernels(v.kernels))
    if v.video.enabled and cam_layer:
        observers.append(GradCamVideo(v.video, cam_layer, v.gradcam.count))
    if v.feature_maps.enabled and feature_layer:
        observers.append(FeatureMaps(v.feature_maps, feature_layer))
    if v.histograms.enabled:
        observers.append(Histograms(v.histograms))
    if v.pr_curves.enabled:
        observers.append(PrCurves(v.pr_curves))
    if v.embedding.enabled and heads:
        observers.append(Embedding(v.embedding, heads[-1]))
    if v.graph.enabled:
        observers.append(Graph())
    if v.hparams.enabled:
        observers.append(HParams())
    if v.scalars_json.enabled:
        observers.append(ScalarsJson())
    return observers


def check_spatial(model: nn.Module, layer: str, sample: torch.Tensor) -> None:
    shape = tuple(capture(model, layer, sample).shape)
    if len(shape) != 4:
        raise ConfigError(f"visuals.gradcam.layer '{layer}' outputs shape {shape}; Grad-CAM needs a layer with "
                          f"(N, C, H, W) output, e.g. a conv layer: {', '.join(conv_layers(model)) or '(none)'}")
