"""The one YAML reader: line marks, YAML 1.2 floats, duplicate keys and binary files refused."""
from __future__ import annotations

import pytest

from trainlib.config import load_yaml, resolve
from trainlib.errors import ConfigError
from trainlib.yaml_reader import parse_value, read_yaml


def test_every_key_and_item_has_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\noptimizer:\n  name: adam\n  lr: 1e-3\ntransforms:\n  train:\n    - random_crop\n")
    doc = read_yaml(path)
    assert doc.lines[("optimizer", "lr")] == 4 and doc.lines[("transforms", "train", 0)] == 7
    assert doc.line_of(("optimizer", "lr", "deeper")) == 4
    assert doc.data["optimizer"]["lr"] == 1e-3  # YAML 1.2: an exponent without a dot is a float


@pytest.mark.parametrize("text", ["1e-3", "-2E+4", "3.5e2"])
def test_yaml_12_floats_in_files_and_overrides(text):
    assert parse_value(text) == float(text)


@pytest.mark.parametrize("text, key, first, second", [
    ("epochs: 3\nseed: 1\nepochs: 4\n", "epochs", 1, 3),
    ("optimizer:\n  lr: 0.1\n  momentum: 0.9\n  lr: 0.2\n", "optimizer.lr", 2, 4),
    ("space:\n  optimizer.lr: [0.1]\n  optimizer.lr: [0.2]\n", "space.optimizer.lr", 2, 3),
])
def test_duplicate_keys_are_refused_naming_both_lines(tmp_path, text, key, first, second):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_yaml(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{second}: {key}: duplicate key") and f"line {first}" in message


def test_a_binary_file_is_one_config_error(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"PK\x03\x04\x14\x00\xff\xfe\x00\x80binary")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        read_yaml(path)


@pytest.mark.parametrize("text, key, line", [
    ("epochs: 2\noptimizer:\n  lr: -1\n", "optimizer.lr", 3),
    ("model: resnet35\n", "model.name", 1),
    ("transforms:\n  train: [random_crop, {random_horizontal_flip: {p: 3}}]\n", "transforms.train[1].p", 2),
    ("optimizer:\n  name: sgd\n  beta1: .nan\n", "optimizer.beta1", 3),
])
def test_config_file_errors_name_file_line_and_key(tmp_path, text, key, line):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        resolve([load_yaml(path)])
    assert str(info.value).startswith(f"{path}:{line}: {key}: "), str(info.value)


def test_a_key_overridden_above_the_file_is_not_blamed_on_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("optimizer:\n  lr: 0.1\n")
    with pytest.raises(ConfigError) as info:
        resolve([load_yaml(path), {"optimizer": {"lr": -1.0}}])
    assert not str(info.value).startswith(str(path)) and "optimizer.lr" in str(info.value)


@pytest.mark.parametrize("layer, key", [
    ({"optimizer": {"lr": float("inf")}}, "optimizer.lr"),
    ({"optimizer": {"name": "adam", "beta1": float("nan")}}, "optimizer.beta1"),
    ({"diagnose": {"max_grad_norm": float("inf")}}, "diagnose.max_grad_norm"),
])
def test_non_finite_numbers_are_refused_at_validation(layer, key):
    with pytest.raises(ConfigError, match=rf"'{key}'.*(finite|greater)"):
        resolve([layer])
