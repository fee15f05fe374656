"""Read the default run's TensorBoard event files back: every visual of the seed's chapter 4 is there."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.observed import healthy_run, read_events

NET_PARAMS = [f"{layer}.{kind}" for layer in ("conv1", "conv2", "fc1", "fc2", "fc3") for kind in ("weight", "bias")]
IMAGES = ["inputs/train", "kernels/conv1", "kernels/conv2", "feature_maps/conv1", "gradcam/conv2",
          "confusion_matrix/valid"]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, empty_store_template):
    return healthy_run(tmp_path_factory, empty_store_template)


@pytest.fixture(scope="module")
def events(default_run):
    return read_events(Path(default_run.run_dir) / "tb")


def test_scalars_grouped_lr_time_and_diagnosis(events):
    scalars = events["simple_value"]
    for tag in ("train/loss", "valid/loss", "train/acc", "valid/acc", "lr", "time/epoch_s", "time/img_per_s",
                "valid/best_acc", "diag/grad_norm_max", "diag/dead_fraction_max", "diag/update_ratio_max"):
        assert sorted(set(scalars[tag])) == [1, 2, 3, 4, 5], tag
    assert scalars["loss_group"] and scalars["acc_group"]  # train and valid on one chart
    assert scalars["test/acc"] == [5]


def test_histograms_of_weights_and_gradients_per_layer(events):
    histograms = events["histo"]
    for name in NET_PARAMS:
        assert histograms[f"weights/{name}"] == [5], name  # default: every 5th epoch, and the last
        assert histograms[f"grads/{name}"] == [5], name


def test_images_on_the_last_epoch(events):
    images = events["image"]
    for tag in IMAGES:
        assert images[tag] == [5], tag


def test_text_pr_curves_graph_hparams(events):
    assert "config/text_summary" in events["text"]
    assert all(events["pr_curves"][f"pr_curve/{c}"] == [5] for c in range(10))
    assert events["graph"]
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(events["hparams"])
    assert events["simple_value"]["hparam/test/acc"]


def test_embedding_projector_of_penultimate_features(default_run):
    tb = Path(default_run.run_dir) / "tb"
    config = (tb / "projector_config.pbtxt").read_text()
    assert 'tensor_name: "penultimate:00005"' in config and "sprite" in config
    folder = tb / "00005" / "penultimate"
    rows = (folder / "tensors.tsv").read_text().splitlines()
    assert len(rows) == 100 and len(rows[0].split("\t")) == 84  # 100 valid images x fc2's 84 features
    labels = (folder / "metadata.tsv").read_text().split()
    assert len(labels) == 100 and set(labels) <= {str(d) for d in range(10)} and len(set(labels)) > 1
    assert (folder / "sprite.png").read_bytes()[:4] == b"\x89PNG"


def test_important_images_and_diagnostics_are_mlflow_artifacts(default_run):
    client = default_run.client()
    visuals = {a.path for a in client.list_artifacts(default_run.run_id, "visuals")}
    for name in ("inputs_train", "gradcam_conv2", "confusion_matrix_valid"):
        assert f"visuals/{name}_e005.png" in visuals, name
    assert "diagnostics.json" in {a.path for a in client.list_artifacts(default_run.run_id)}
