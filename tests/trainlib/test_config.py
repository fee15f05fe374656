from __future__ import annotations

import pytest
import yaml

from trainlib.config import FAMILIES, flatten, load_yaml, merge, nest, parse_override, resolve
from trainlib.errors import ConfigError


def test_defaults_are_the_documented_main_job():
    cfg = resolve([])
    assert cfg.model["name"] == "net" and cfg.data["name"] == "digits"
    assert cfg.optimizer["name"] == "sgd" and cfg.optimizer["momentum"] == 0.9
    assert cfg.init["name"] == "initialize_weights" and cfg.loss["name"] == "cross_entropy"


def test_layers_apply_in_order_file_then_set_then_flags():
    cfg = resolve([{"epochs": 3, "optimizer": {"lr": 0.1}}, {"optimizer": {"lr": 0.2}}, {"epochs": 5}])
    assert cfg.epochs == 5 and cfg.optimizer["lr"] == 0.2


def test_switching_family_name_keeps_shared_params_and_drops_the_rest():
    cfg = resolve([{"optimizer": {"lr": 0.03}}, {"optimizer": {"name": "adam"}}])
    assert cfg.optimizer["name"] == "adam" and cfg.optimizer["lr"] == 0.03
    assert "momentum" not in cfg.optimizer


def test_string_shorthand_for_families():
    assert resolve([{"model": "resnet34"}]).model == {"name": "resnet34", "stem": "cifar"}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_rejects_unknown_names_listing_valid_ones(family):
    with pytest.raises(ConfigError) as err:
        resolve([{family: {"name": "no_such_thing"}}])
    for name in FAMILIES[family].names():
        assert name in str(err.value)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_registered_entry_validates_with_its_defaults(family):
    for entry in FAMILIES[family].entries():
        if not entry.refused:
            assert FAMILIES[family].validate(entry.name, {}) == entry.defaults()


@pytest.mark.parametrize("layer, culprit", [
    ({"epochs": 0}, "epochs"),
    ({"optimizer": {"lr": -0.1}}, "optimizer.lr"),
    ({"optimizer": {"lrr": 0.1}}, "optimizer.lrr"),
    ({"nope": 1}, "nope"),
    ({"tracking": {"nope": 1}}, "tracking.nope"),
    ({"device": "tpu"}, "tpu"),
    ({"batch_size": "big"}, "batch_size"),
])
def test_bad_values_name_the_culprit(layer, culprit):
    with pytest.raises(ConfigError, match=culprit.replace(".", r"\.")):
        resolve([layer])


def test_overrides_parse_values_as_yaml_never_code():
    assert parse_override("optimizer.lr=1e-3") == ("optimizer.lr", 1e-3)
    assert parse_override("optimizer.nesterov=true") == ("optimizer.nesterov", True)
    assert parse_override("model.name=__import__('os')") == ("model.name", "__import__('os')")
    assert nest("a.b.c", 1) == {"a": {"b": {"c": 1}}}
    with pytest.raises(ConfigError):
        parse_override("no_equals_sign")


def test_malformed_yaml_reports_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: 3\noptimizer:\n  lr: [0.1\n")
    with pytest.raises(ConfigError, match=r"line \d+"):
        load_yaml(path)


def test_resolved_config_round_trips_through_yaml():
    cfg = resolve([{"optimizer": {"name": "adamw", "lr": 0.002}, "epochs": 4}])
    assert resolve([yaml.safe_load(cfg.to_yaml())]) == cfg


def test_flatten_gives_dotted_params():
    flat = flatten(resolve([]).to_dict())
    assert flat["optimizer.lr"] == 0.05 and flat["model.name"] == "net"
    assert merge({"a": {"b": 1}}, {"a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}
