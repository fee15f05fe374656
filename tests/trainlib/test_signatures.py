"""The registries' torch-free description (trainlib/signatures.py) is what the builders say: the
same names, summaries, parameters (types and defaults) and options, for every entry of every
family; and checking a config through it imports no torch."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trainlib import describe_registries, signatures
from trainlib.describe_registries import MODULES, annotation_source, render

ROOT = Path(__file__).resolve().parents[2]


def test_the_description_is_what_the_builders_say():
    assert describe_registries.TARGET.read_text() == render(), \
        f"trainlib/signatures.py is out of date: run `{describe_registries.COMMAND}`"


def test_every_described_entry_has_its_builder():
    render()  # imports every family's module: the builders attach to the described entries
    for name in MODULES:
        registry = getattr(signatures, name)
        assert registry.entries() and [e.name for e in registry.entries() if e.builder is None] == []


def test_launch_catalog_without_torch_lists_what_the_builders_take():
    """`launch catalog` (names, summaries, parameter types and defaults) in a fresh process, which
    reads the description only, equals the same listing made from the builders' own signatures."""
    from launcher.commands.catalog import FAMILIES, describe_family
    from trainlib.visuals import VISUALS

    render()
    built = {**{family: getattr(signatures, attr) for family, (_, attr) in FAMILIES.items() if family != "visuals"},
             "visuals": VISUALS}
    assert all(entry.builder is not None for registry in built.values() for entry in registry.entries())
    expected = "".join("\n".join(describe_family(family, built[family])) + "\n" for family in FAMILIES)
    code = "import sys; from launcher.cli import main; main(['catalog'], standalone_mode=False); print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout == expected + "[]\n"


def test_a_stale_description_is_reported(tmp_path, monkeypatch):
    stale = tmp_path / "signatures.py"
    stale.write_text(describe_registries.TARGET.read_text().replace("'sgd'", "'sgd_old'", 1))
    monkeypatch.setattr(describe_registries, "TARGET", stale)
    assert describe_registries.main(["--check"]) == 1


def test_a_type_the_description_cannot_name_is_refused():
    from typing import Annotated

    from pydantic import Field

    with pytest.raises(TypeError, match="name it in trainlib/validation.py"):
        annotation_source(Annotated[float, Field(gt=3)])


VALIDATE = """
import sys
from trainlib.config import resolve
from trainlib.errors import ConfigError
cfg = resolve([{"optimizer": {"name": "adamw"}, "transforms": {"train": ["random_crop", "normalize"]},
                "visuals": {"gradcam": {"count": 2}}}])
assert cfg.optimizer["weight_decay"] == 0.01, cfg.optimizer
for bad in ({"epochs": "zz"}, {"optimizer": {"name": "nope"}}, {"nope": 1}, {"init": {"name": "xavier_uniform", "gain": 2, "nonlinearity": "relu"}}):
    try:
        resolve([bad])
    except ConfigError:
        pass
    else:
        raise AssertionError(bad)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "numpy")))
"""


def test_validating_a_config_imports_no_torch():
    out = subprocess.run([sys.executable, "-c", VALIDATE], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
