"""One source of truth for defaults: a key a user did not write takes the value `launch catalog`
and the README's generated reference show, for every entry of every registry."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from launcher import docs
from launcher.commands.catalog import FAMILIES as CATALOG, load_registry
from launcher.cli import main
from trainlib.config import FAMILIES, default_config_dict, family_line, load_yaml, resolve
from trainlib.pipelines import BATCH

CONFIG_KEY = {"models": "model", "datasets": "data", "inits": "init", "losses": "loss",
              "optimizers": "optimizer", "schedulers": "scheduler"}
NESTED_ONE = ["random_horizontal_flip"]  # random_apply & co. need one transform to hold


def _entries():
    for family in CATALOG:
        for entry in load_registry(family).entries():
            if not entry.refused:
                yield pytest.param(family, entry, id=f"{family}-{entry.name}")


def _section(family: str, entry) -> tuple[dict, list[str]]:
    """A config layer naming `entry` the way a user writes it, and the path to its resolved params."""
    if family in CONFIG_KEY:
        return {CONFIG_KEY[family]: {"name": entry.name}}, [CONFIG_KEY[family]]
    if family == "transforms":
        where = "batch" if entry.meta.get("level") == BATCH else "train"
        item = {entry.name: {"transforms": NESTED_ONE}} if entry.meta.get("nested") else entry.name
        return {"transforms": {where: [item]}}, ["transforms", where, 0]
    return {"visuals": {entry.name: {"enabled": True}}}, ["visuals", entry.name]


def _resolved(cfg, path: list) -> dict:
    value = cfg.model_dump()
    for key in path:
        value = value[key]
    return value


_CATALOG_TEXT = {}
_REGISTRIES = docs.SECTIONS["registries"]()


def _readme_row(key: str, name: str) -> str:
    table = _REGISTRIES.split(f"#### {key}\n", 1)[1].split("\n#### ", 1)[0]
    return next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))


def _catalog_lines(family: str) -> list[str]:
    if family not in _CATALOG_TEXT:
        result = CliRunner().invoke(main, ["catalog", family])
        assert result.exit_code == 0, result.output
        _CATALOG_TEXT[family] = result.output.splitlines()
    return _CATALOG_TEXT[family]


@pytest.mark.parametrize("family, entry", list(_entries()))
def test_a_key_not_written_takes_the_catalog_and_readme_default(family, entry, tmp_path: Path):
    layer, path = _section(family, entry)
    config_file = tmp_path / "my.yaml"
    config_file.write_text(yaml.safe_dump(layer))
    got = _resolved(resolve([load_yaml(config_file)]), path)
    catalog = _catalog_lines(family)
    readme_row = _readme_row(CONFIG_KEY.get(family, family), entry.name)
    for name, param in entry.params.items():
        if family == "transforms" and name == "transforms" and entry.meta.get("nested"):
            continue  # written above
        assert f"      {name}: {param.type_name} = {got[name]!r}" in catalog, (name, got[name])
        assert f"`{name}` ({param.type_name.replace('|', chr(92) + '|')}) = `{docs._flow_yaml(got[name])}`" \
            in readme_row, (name, got[name])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_built_in_default_config_names_entries_and_holds_no_param_of_its_own(family):
    """The defaults layer gives each family only a name: every param of the default run is a catalog default."""
    assert list(default_config_dict()[family]) == ["name"]


def test_an_optimizer_section_without_weight_decay_gets_the_catalog_value_not_a_hidden_one(tmp_path):
    config_file = tmp_path / "paper.yaml"
    config_file.write_text("optimizer:\n  name: sgd\n  lr: 0.1\n")
    cfg = resolve([load_yaml(config_file)])
    assert cfg.optimizer["weight_decay"] == 0.0 and cfg.optimizer["dampening"] == 0.0
    assert resolve([{"optimizer": {"lr": 0.1}}]).optimizer["weight_decay"] == 0.0
    # what the user wrote stays, through later overrides
    kept = resolve([{"optimizer": {"name": "sgd", "weight_decay": 5e-4}}, {"optimizer": {"lr": 0.2}}])
    assert kept.optimizer["weight_decay"] == 5e-4 and kept.optimizer["lr"] == 0.2
    # switching the name drops nothing the user wrote that the new entry takes, and takes no hidden lr
    assert resolve([{"optimizer": {"name": "adam"}}]).optimizer["lr"] == 0.001


def test_the_resolved_optimizer_and_scheduler_lines():
    cfg = resolve([{"optimizer": {"weight_decay": 5e-4}}])
    assert family_line("optimizer", cfg.optimizer) == ("optimizer: sgd lr=0.05 momentum=0.9 dampening=0.0 "
                                                       "nesterov=False weight_decay=0.0005 no_decay_bias_norm=False")
    assert family_line("scheduler", cfg.scheduler) == "scheduler: cosine eta_min=0.0 warmup_epochs=0.0 warmup_start=0.1"
