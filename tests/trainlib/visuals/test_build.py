"""Which visuals a config builds, and bad layer names failing before any run opens."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from launcher.cli import main
from tests.conftest import train_args
from trainlib.config import VisualsConfig, resolve
from trainlib.errors import ConfigError
from trainlib.models import Net, ResNet34
from trainlib.observers import Observer, due
from trainlib.visual_settings import DESTINATIONS, MLFLOW, Toggle
from trainlib.visuals import VISUALS, build_visuals

SAMPLE = torch.zeros(1, 3, 32, 32)
ITEMS = [name for name, field in VisualsConfig.model_fields.items()  # the switchable visuals
         if isinstance(field.annotation, type) and issubclass(field.annotation, Toggle)]


def built(*layers, model=None) -> set[str]:
    return set(build_visuals(resolve(list(layers)), model or Net(10), SAMPLE))


def test_the_visuals_config_is_the_registry():
    assert ITEMS == VISUALS.names()
    for entry in VISUALS.entries():
        assert VisualsConfig.model_fields[entry.name].annotation is entry.meta["config"]
        assert VisualsConfig.model_fields[entry.name].description == entry.summary
        assert entry.meta["writes"] and set(entry.meta["writes"]) <= set(DESTINATIONS)


def test_defaults_build_every_visual():
    observers = build_visuals(resolve([]), Net(10), SAMPLE)
    assert set(observers) == set(VISUALS.names())
    assert all(isinstance(o, Observer) for o in observers.values())


@pytest.mark.parametrize("item", ITEMS)
def test_each_item_switches_off_alone(item):
    everything = built()
    assert len(built({"visuals": {item: False}})) == len(everything) - 1  # `item: false` = {enabled: false}


def test_master_switch_and_tensorboard_off():
    assert built({"visuals": {"enabled": False}}) == set()
    # without TensorBoard only the visuals that are also MLflow artifacts remain; without both, none
    artifacts = {entry.name for entry in VISUALS.entries() if MLFLOW in entry.meta["writes"]}
    assert artifacts and built({"tracking": {"tensorboard": False}}) == artifacts
    assert built({"tracking": {"tensorboard": False, "mlflow": False}}) == set()


def test_layers_default_to_first_and_last_conv_and_can_be_chosen():
    observers = build_visuals(resolve([]), Net(10), SAMPLE)
    assert observers["feature_maps"].layer == "conv1" and observers["gradcam"].layer == "conv2"
    assert observers["video"].layer == "conv2"
    cfg = resolve([{"visuals": {"gradcam": {"layer": "layer3"}, "feature_maps": {"layer": "layer1.0.left.2"}}}])
    observers = build_visuals(cfg, ResNet34(10), SAMPLE)
    assert observers["gradcam"].layer == "layer3" and observers["feature_maps"].layer == "layer1.0.left.2"


@pytest.mark.parametrize("override, culprit", [
    ("visuals.gradcam.layer=conv9", "unknown layer 'conv9' for visuals.gradcam.layer; conv layers of this model: conv1, conv2"),
    ("visuals.feature_maps.layer=nope", "visuals.feature_maps.layer"),
    ("visuals.gradcam.layer=fc1", "outputs shape (1, 120)"),
    ("visuals.gradcam.every=0", "visuals.gradcam.every"),
    ("visuals.kernels.colour=1", "unknown config key 'visuals.kernels.colour'"),
    ("diagnose.stop_on=[nan, nope]", "diagnose.stop_on.1"),
])
def test_bad_visual_or_diagnose_config_fails_before_any_run(override, culprit, tmp_path, store, client):
    result = CliRunner().invoke(main, train_args(tmp_path, store, "-s", override))
    assert result.exit_code == 2 and culprit in result.stderr, result.stderr
    assert all(not client.search_runs([e.experiment_id]) for e in client.search_experiments())


def test_due_logs_every_nth_and_the_last_epoch():
    assert [e for e in range(1, 16) if due(e, 5, 15)] == [5, 10, 15]
    assert [e for e in range(1, 13) if due(e, 5, 12)] == [5, 10, 12]
    assert [e for e in range(1, 4) if due(e, 1, 3)] == [1, 2, 3]
    with pytest.raises(ConfigError):
        resolve([{"visuals": {"inputs": {"count": 0}}}])


def test_a_visual_must_write_to_a_known_place():
    with pytest.raises(ValueError, match="visual 'nowhere' writes to 'stdout'; valid: tensorboard, mlflow"):
        VISUALS.describe("nowhere", Toggle, writes="stdout", summary="writes nowhere")
    assert "nowhere" not in VISUALS


def test_every_described_visual_has_its_builder_and_only_a_described_one_can_register():
    assert all(entry.builder is not None for entry in VISUALS.entries())
    with pytest.raises(ValueError, match="visual 'undescribed' is not described in trainlib/visual_settings.py"):
        VISUALS.register("undescribed")
