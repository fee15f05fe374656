"""The docs: the references in docs/*.md are generated from the schemas the code validates; the
README fits a screen; every link resolves; every README command parses (and a train command
resolves its config); every example whose output README.md or docs/*.md show is run and its
output compared (tests/launcher/docs_examples.py)."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from typing import Literal

import click
import pytest
from click.testing import CliRunner
from pydantic import BaseModel, Field

from launcher import docs
from launcher.cli import main
from tests.launcher import docs_examples as ex
from trainlib.config import FAMILIES, TrainConfig, flatten
from trainlib.transforms import TRANSFORMS
from trainlib.visuals import VISUALS


def test_generated_sections_are_up_to_date():
    for path, (current, fresh) in docs.render_all().items():
        assert fresh == current, f"{path.name} is stale: run `{docs.COMMAND}` and commit it"


def _copy_docs(tmp_path, monkeypatch):
    shutil.copy(docs.README, tmp_path / "README.md")
    shutil.copytree(docs.DOCS, tmp_path / "docs")
    monkeypatch.setattr(docs, "README", tmp_path / "README.md")
    monkeypatch.setattr(docs, "DOCS", tmp_path / "docs")
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    return tmp_path / "docs" / "reference.md"


def test_check_flag_fails_on_a_stale_file(tmp_path, monkeypatch, capsys):
    reference = _copy_docs(tmp_path, monkeypatch)
    reference.write_text(reference.read_text().replace("`epochs`", "`epoch`", 1))
    assert docs.main(["--check"]) == 1 and "out of date: docs/reference.md" in capsys.readouterr().err
    assert docs.main([]) == 0 and docs.main(["--check"]) == 0
    assert "| `epochs` |" in reference.read_text()


def test_missing_markers_name_the_section(tmp_path, monkeypatch):
    reference = _copy_docs(tmp_path, monkeypatch)
    reference.write_text("# a reference without markers\n")
    with pytest.raises(SystemExit, match="config-reference"):
        docs.main(["--check"])


# --- the README --------------------------------------------------------------------------------

def test_the_readme_fits_a_screen_and_names_the_tutorial_not_a_folder_outside():
    text = docs.README.read_text()
    assert len(text.splitlines()) <= 300
    assert "../shared" not in text and "tensor-yu/PyTorch_Tutorial" in text


def test_ci_reads_the_two_quickstart_commands():
    out = subprocess.run([str(ex.ROOT / ".ci" / "run"), "--print"], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["pip install -e . && launch train",
                                       'pip install -e ".[test]" && python -m pytest']


def _readme_commands() -> list[str]:
    """Every `launch ...` command of the README (indented code and `$ ` lines), continuations joined,
    comments dropped."""
    text = re.sub(r"\s*\\\n\s*", " ", docs.README.read_text())
    return [m.group(1) for m in re.finditer(r"^(?:    |\$ )(launch [^#\n]*?)\s*(?:#.*)?$", text, re.M)]


def _parse(command: click.Command, args: list[str], name: str) -> None:
    """Click's own parse of the arguments (names, options, choices, types), down through groups."""
    ctx = command.make_context(name, args)
    if isinstance(command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]
        _parse(command.get_command(ctx, rest[0]), rest[1:], rest[0])


PLACEHOLDERS = ("RUN_ID", "my.yaml", "HEAD_IP", "HOST", "BUCKET")


@pytest.mark.parametrize("command", _readme_commands())
def test_every_readme_command_parses_and_a_train_command_resolves_its_config(command, tmp_path, monkeypatch):
    args = shlex.split(command)[1:]
    _parse(main, args, "launch")
    if args[0] == "train" and not any(p in command for p in PLACEHOLDERS):
        monkeypatch.chdir(tmp_path)
        result = CliRunner().invoke(main, [*args, "--print-config"])
        assert result.exit_code == 0 and "optimizer:" in result.output, result.output
        assert not any(tmp_path.iterdir()), "--print-config writes nothing"


def test_the_readme_commands_are_found():
    commands = _readme_commands()
    assert "launch train --print-config" in commands
    assert any(c.startswith("launch sweep search_spaces/optim.yaml --smoke --address HEAD_IP:6379 --tracking-uri")
               for c in commands)


# --- links and examples ------------------------------------------------------------------------

@pytest.mark.parametrize("path", docs.files(), ids=lambda p: p.name)
def test_every_relative_link_points_at_a_file_and_heading(path):
    assert ex.broken_links(path) == []


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "a.md").write_text("# Title here\n\n[ok](#title-here) [file](b.md#nowhere) [gone](c.md)\n")
    (tmp_path / "b.md").write_text("# B\n")
    assert ex.broken_links(tmp_path / "a.md") == [
        "b.md#nowhere: no heading with anchor #nowhere in b.md", f"c.md: no file {tmp_path / 'c.md'}"]


def test_anchors_are_githubs():
    assert ex.anchor("`launch train`") == "launch-train"
    assert ex.anchor("Security: what launch trusts") == "security-what-launch-trusts"
    assert ex.anchor("DDP: `launch train --workers N`") == "ddp-launch-train---workers-n"


EXAMPLES = [e for path in docs.files() for e in ex.examples(path)]


@pytest.mark.parametrize("example", [pytest.param(e, id=e.name, marks=[pytest.mark.slow] if e.slow else [])
                                     for e in EXAMPLES])
def test_every_example_prints_what_the_docs_show(example, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_ADDRESS"))}
    env["PYTHONPATH"] = str(ex.ROOT)
    for command, shown, printed in ex.run(example, tmp_path, env):
        assert ex.matches(shown, printed.splitlines(), example.tolerance), \
            f"{example.source}: `{command}` printed:\n{printed}\nthe docs show:\n" + "\n".join(shown)


def test_the_examples_are_found():
    sources = {e.steps[0][0] for e in EXAMPLES}
    assert "launch sweep search_spaces/optim.yaml --smoke --dry-run" in sources
    assert all(e.steps and all(shown for _, shown in e.steps) for e in EXAMPLES), "an example shows no output"


def test_the_matcher_takes_numbers_within_the_tolerance_and_masks_what_changes():
    shown = ["epoch   1/2  train loss 2.1033 acc 24.62%  lr 0.05  10.0s  144 img/s", "...",
             "run id:          4a565e79d1c24f0c9b1e2b6a3f0d7e11", "run folder: runs/net-digits-20261206-211459-4a565e79",
             "error: unknown run ... in ...; list runs with: launch runs"]
    printed = ["epoch   1/2  train loss 2.1500 acc 24.00%  lr 0.05  3.2s  1,544 img/s", "a line", "another",
               "run id:          0123456789abcdef0123456789abcdef", "run folder: runs/net-digits-20270101-000000-01234567",
               "error: unknown run 'x' in sqlite:///m.db; list runs with: launch runs"]
    assert ex.matches(shown, printed, 0.05)
    assert not ex.matches(shown, [printed[0].replace("2.1500", "2.5000"), *printed[1:]], 0.05)
    assert not ex.matches(shown, [*printed[:-1], "error: no run 'x'"], 0.05)
    assert not ex.matches(shown[:1], printed[:2], 0.05), "a printed line the docs do not show"


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
