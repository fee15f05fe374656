"""The README's config and registry references are generated from the schemas the code validates."""
from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from launcher import docs
from trainlib.config import FAMILIES, TrainConfig, flatten
from trainlib.transforms import TRANSFORMS
from trainlib.visuals import VISUALS


def test_readme_is_up_to_date():
    current = docs.README.read_text()
    assert docs.render(current) == current, f"README.md is stale: run `{docs.COMMAND}` and commit it"


def test_check_flag_fails_on_a_stale_readme(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "README.md"
    stale.write_text(docs.README.read_text().replace("`epochs`", "`epoch`", 1))
    monkeypatch.setattr(docs, "README", stale)
    assert docs.main(["--check"]) == 1 and "out of date" in capsys.readouterr().err
    assert docs.main([]) == 0 and docs.main(["--check"]) == 0


def test_every_config_key_is_documented_with_its_default():
    reference = docs.SECTIONS["config-reference"]()
    defaults = flatten(TrainConfig().to_dict())
    for key in {k for k in defaults if k.split(".")[0] not in FAMILIES} | set(FAMILIES):
        assert f"| `{key}` |" in reference, key
    assert "| `epochs` | `int (>= 1, <= 1000000)` | `15` | training epochs |" in reference


@pytest.mark.parametrize("family, registry", [*FAMILIES.items(), ("transforms", TRANSFORMS), ("visuals", VISUALS)])
def test_every_registered_name_and_param_is_documented(family, registry):
    reference = docs.SECTIONS["registries"]()
    table = reference.split(f"#### {family}\n", 1)[1].split("\n#### ", 1)[0]
    for entry in registry.entries():
        row = next(line for line in table.splitlines() if line.startswith(f"| `{entry.name}` |"))
        for name, param in entry.params.items():
            type_cell = param.type_name.replace("|", "\\|")  # escaped inside a Markdown table
            assert f"`{name}` ({type_cell})" in row, row


class _Inner(BaseModel):
    mode: Literal["min", "max"] = Field("max", description="direction")


class _Item(BaseModel):
    weight: float = Field(gt=0)


class _Outer(BaseModel):
    name: str = Field(min_length=1, description="what it is called")
    inner: _Inner = Field(default_factory=_Inner)
    maybe: _Inner | None = None
    items: list[_Item] = []


def test_a_further_pydantic_model_renders_nested_keys_constraints_and_item_models():
    text = docs.model_reference(_Outer)
    assert "| `name` | `str (min length 1)` | required | what it is called |" in text
    assert "| `inner.mode` | `min \\| max` | `max` | direction |" in text
    assert "| `maybe` | `_Inner \\| null` | `null` |" in text
    assert "| `items` | `list[_Item]` | `[]` |" in text
    assert "`_Inner`\n\n| key |" in text and "`_Item`\n\n| key |" in text
    assert "| `weight` | `float (> 0)` | required |" in text


def test_missing_markers_name_the_section():
    with pytest.raises(SystemExit, match="config-reference"):
        docs.render("# a README without markers\n")
