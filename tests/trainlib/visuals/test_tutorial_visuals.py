"""The tutorial's chapter-4 pictures as it draws them, read back from a real run's event files
(tensorboard's EventAccumulator) and MLflow artifacts (MlflowClient): the Grad-CAM video
(add_video), scalars.json (export_scalars_to_json), feature maps after the ReLU, both kernel
views, the train confusion matrix (after training, as the tutorial's) next to the valid one, and visuals at `visuals.at_epochs`."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.observed import train_once
from trainlib.config import resolve
from trainlib.models import build_model
from trainlib.visuals import build_visuals
from trainlib.visuals.feature_maps import FeatureMaps

# 3 epochs, visuals every 20th and the last, and at epoch 1 (where a sweep's scheduler would judge)
TUTORIAL = {"epochs": 3, "visuals": {"at_epochs": [1]}}


@pytest.fixture(scope="module")
def tutorial_run(tmp_path_factory, empty_store_template):
    return train_once(tmp_path_factory, empty_store_template, "tutorial", TUTORIAL)


@pytest.fixture(scope="module")
def events(tutorial_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(Path(tutorial_run.run_dir) / "tb"), size_guidance={"images": 0, "scalars": 0})
    return accumulator.Reload()


def decoded(image_event) -> Image.Image:
    return Image.open(io.BytesIO(image_event.encoded_image_string))


def test_grad_cam_video_has_a_frame_per_epoch(events):
    (video,) = events.Images("gradcam_video/conv2")
    gif = decoded(video)
    assert video.step == 3 and gif.format == "GIF" and gif.n_frames == 3
    (last_picture,) = [e for e in events.Images("gradcam/conv2") if e.step == 3]
    assert (gif.width, gif.height) == decoded(last_picture).size  # a frame is the Grad-CAM grid


def test_scalars_json_holds_every_scalar_as_the_event_files_do(tutorial_run, events):
    client = tutorial_run.client()
    assert "scalars.json" in {a.path for a in client.list_artifacts(tutorial_run.run_id)}
    exported = json.loads(Path(client.download_artifacts(tutorial_run.run_id, "scalars.json")).read_text())
    for tag in events.Tags()["scalars"]:
        points = [(e.step, pytest.approx(e.value, rel=1e-6)) for e in events.Scalars(tag)]
        assert [(step, value) for _, step, value in exported[tag]] == points, tag
    assert {"train/loss", "valid/acc", "test/acc", "lr"} <= set(exported)
    assert any(tag.endswith("loss_group/train") for tag in exported)  # add_scalars groups too


def test_visuals_are_drawn_at_the_judged_epochs_too(tutorial_run, events):
    for tag in ("confusion_matrix/valid", "confusion_matrix/train_batches", "gradcam/conv2", "kernels/conv1",
                "kernels_split/conv1", "feature_maps/conv1", "inputs/train"):
        assert [e.step for e in events.Images(tag)] == [1, 3], tag
    visuals = {a.path for a in tutorial_run.client().list_artifacts(tutorial_run.run_id, "visuals")}
    for epoch in (1, 3):
        assert {f"visuals/confusion_matrix_train_batches_e00{epoch}.png",
                f"visuals/confusion_matrix_valid_e00{epoch}.png"} <= visuals


def test_the_train_confusion_matrix_is_the_tutorials_after_training(tutorial_run, events):
    """validate(net, train_loader) after training: drawn once, at the last epoch, from the final weights in eval
    mode over every train batch (the per-epoch one, from the batches as trained, has its own tag)."""
    assert [e.step for e in events.Images("confusion_matrix/train")] == [3]
    visuals = {a.path for a in tutorial_run.client().list_artifacts(tutorial_run.run_id, "visuals")}
    assert "visuals/confusion_matrix_train_e003.png" in visuals and "visuals/confusion_matrix_train_e001.png" not in visuals


def test_both_kernel_views_of_the_first_conv(events):
    combined, split = (decoded(events.Images(tag)[-1]) for tag in ("kernels/conv1", "kernels_split/conv1"))
    assert combined.size == (1 + 6 * 6, 1 + 6)  # 6 RGB kernels in a row
    assert split.size == (1 + 3 * 6, 1 + 6 * 6) and split.mode == "L"  # a row per output channel, gray


def test_feature_maps_are_drawn_after_the_relu(events):
    """After a ReLU, a good share of each map is exactly zero (black); a raw conv output has one minimum per map."""
    grid = torch.tensor(list(decoded(events.Images("feature_maps/conv1")[-1]).convert("L").getdata()), dtype=torch.float)
    tiles = grid[grid < 255]  # the grid's white padding left out
    assert float((tiles == 0).float().mean()) > 0.05


@pytest.mark.parametrize("model, layer", [("net", "conv1"), ("resnet34", "pre.2")])
def test_feature_maps_default_to_the_first_activation(model, layer):
    cfg = resolve([{"model": model}])
    net = build_model(cfg.model, 10, 3)
    observers = build_visuals(cfg, net, torch.zeros(1, 3, 32, 32))
    assert [o.layer for o in observers.values() if isinstance(o, FeatureMaps)] == [layer]


def test_the_raw_images_are_drawn_de_normalized_beside_the_feature_maps(tutorial_run, events):
    """The tutorial's normalize_invert: x * std + mean of the eval pipeline's normalize gives the pixels back."""
    from trainlib.config import validate
    from trainlib.data.datasets import build_dataset
    from trainlib.visuals.feature_maps import denormalized
    from trainlib.visuals.images import grid

    assert [e.step for e in events.Images("feature_maps/raw")] == [e.step for e in events.Images("feature_maps/conv1")]
    cfg = validate(yaml_config(tutorial_run))
    data = build_dataset(cfg.data)
    pixels = data.split("valid").images[:4].float() / 255  # the fixed images: the first valid samples
    normalized = (pixels - torch.tensor(data.mean).view(-1, 1, 1)) / torch.tensor(data.std).view(-1, 1, 1)
    assert torch.allclose(denormalized(normalized, [{"name": "normalize", "mean": None, "std": None}], data), pixels,
                          atol=1e-5)
    drawn = torch.tensor(list(decoded(events.Images("feature_maps/raw")[-1]).convert("RGB").getdata()))
    expected = (grid(pixels) * 255).round().permute(1, 2, 0).reshape(-1, 3)
    assert (drawn.float() - expected).abs().max() <= 1


def yaml_config(tutorial_run) -> dict:
    import yaml

    return yaml.safe_load((Path(tutorial_run.run_dir) / "config.yaml").read_text())
