"""`launch catalog`: every registered name with its parameters, straight from the registries."""
from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from launcher.commands.catalog import FAMILIES, load_registry
from launcher.cli import main


def catalog(*args: str):
    return CliRunner().invoke(main, ["catalog", *args])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_lists_every_name_with_its_parameters(family):
    result = catalog(family)
    assert result.exit_code == 0, result.output
    registry = load_registry(family)
    lines = result.output.splitlines()
    assert lines[0] == f"{family} ({len(registry.names())})"
    for entry in registry.entries():
        assert f"  {entry.name}: {entry.summary}" in lines
        for param in entry.params.values():
            assert f"      {param.name}: {param.type_name} = {param.default!r}" in lines


def test_without_a_family_every_family_is_listed():
    result = catalog()
    assert result.exit_code == 0
    headers = [line.split(" (")[0] for line in result.output.splitlines() if not line.startswith(" ")]
    assert headers == list(FAMILIES)


def test_parameters_show_types_and_defaults():
    out = catalog("optimizers").output
    assert "  sgd: Stochastic gradient descent with momentum, dampening, Nesterov and weight decay." in out
    assert "      nesterov: bool = False" in out
    assert "      line_search_fn: Literal['strong_wolfe'] | None = None" in out
    assert "      momentum: float >= 0 = 0.9" in out


def test_shared_parameters_and_refusals_are_shown():
    schedulers = catalog("schedulers").output
    assert "  (every entry) warmup_epochs:" in schedulers and "      warmup_epochs: float >= 0 = 0.0" in schedulers
    optimizers = catalog("optimizers").output
    assert "      refused: SparseAdam only takes sparse gradients" in optimizers


def test_unknown_family_is_an_error_listing_the_valid_ones():
    result = catalog("optimisers")
    assert result.exit_code == 2
    assert result.output.strip() == ("error: unknown catalog family 'optimisers'; valid: "
                                     "models, datasets, inits, losses, optimizers, schedulers, transforms, visuals")


def test_catalog_is_a_launch_command():
    out = subprocess.run([sys.executable, "-m", "launcher", "--help"], capture_output=True, text=True, check=True)
    assert "catalog" in out.stdout
