"""The shape preflight: one sample through each pipeline and the model, before the run opens."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.observed import read_events
from trainlib.config import validate
from trainlib.data.datasets import build_dataset
from trainlib.errors import ConfigError
from trainlib.models import build_model
from trainlib.shape_check import check_shapes
from trainlib.run import run
from trainlib.data.datasets import transform_specs
from trainlib.tags import RUN_DIR

README_FIVE_CROP = [{"resize": {"size": 36}}, {"five_crop": {"size": 32}}, "normalize"]


def preflight(**transforms) -> None:
    cfg = validate({"transforms": transforms})
    data = build_dataset(cfg.data)
    model = build_model(cfg.model, data.num_classes, data.in_channels)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    check_shapes(transform_specs(cfg), data, model, cfg.model["name"])
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("transforms, message", [
    ({"train": ["pad", "normalize"]}, r"transforms\.train: after 'pad' the images are 3x40x40 \(dataset: 3x32x32\)"),
    ({"eval": [{"center_crop": {"size": 28}}, "normalize"]}, r"transforms\.eval: after 'center_crop' .* 3x28x28"),
    ({"eval": [{"resize": {"size": 48}}, "normalize"]}, r"after 'resize' the images are 3x48x48"),
    ({"train": [{"random_crop": {"size": 40}}]}, r"transforms\.train: after 'random_crop' the images are 3x40x40"),
    # Net's reshape(-1, 400) takes 52x52 images (16x10x10 features = 4 x 400): the batch must keep its size
    ({"eval": [{"resize": {"size": 52}}, "normalize"]},
     r"^transforms\.eval: after 'resize' the images are 3x52x52 \(dataset: 3x32x32\), which model 'net' cannot "
     r"take \(a batch of 2 comes out as 8 rows\); make the pipeline end at the size the model takes$"),
])
def test_a_size_the_model_cannot_take_is_refused_naming_the_transform(transforms, message):
    with pytest.raises(ConfigError, match=message):
        preflight(**transforms)


@pytest.mark.parametrize("transforms", [
    {"eval": README_FIVE_CROP},
    {"eval": [{"ten_crop": {"size": 32}}, "normalize"]},
    {"train": [{"random_crop": {"size": 32, "padding": 4}}, "random_horizontal_flip", "normalize"]},
])
def test_pipelines_that_fit_pass_and_leave_the_random_streams_alone(transforms):
    preflight(**transforms)


@pytest.mark.slow
def test_the_readme_five_crop_example_trains_and_draws_every_visual(run_config, client, tmp_path):
    """Eval batches are (B, 5, C, H, W): graph, Grad-CAM, feature maps and embedding take one crop."""
    cfg = run_config(epochs=1, batch_size=256, transforms={"eval": README_FIVE_CROP})
    run(cfg, progress=False, echo=lambda _: None)
    (done,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert done.info.status == "FINISHED", done.data.tags.get("launch.error")
    events = read_events(Path(done.data.tags[RUN_DIR]) / "tb")
    images = events["image"]
    assert images["feature_maps/conv1"] == [1] and images["gradcam/conv2"] == [1]
    assert events["graph"]  # add_graph traced the model on a single crop
