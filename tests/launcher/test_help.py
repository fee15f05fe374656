"""`launch --help` must not import torch, ray or mlflow (it has to be instant)."""
from __future__ import annotations

import subprocess
import sys

import click
import pytest

from launcher.cli import main

HEAVY = ("torch", "ray", "mlflow", "tensorboardX", "torchvision")

PROBE = """
import sys
from click.testing import CliRunner
from launcher.cli import main
result = CliRunner().invoke(main, {args!r})
assert result.exit_code == 0, result.output
print(",".join(m for m in {heavy!r} if m in sys.modules))
"""


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    """Every command of the group, subgroups' commands included, as the words that name it."""
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append([*prefix, name])
        if isinstance(command, click.Group):
            paths += command_paths(command, (*prefix, name))
    return paths


def test_every_subcommand_is_checked():
    names = {path[0] for path in command_paths(main)}
    assert {"train", "sweep", "lr-find", "diagnose", "data"} <= names and len(names) >= 10


@pytest.mark.parametrize("args", [["--help"], *([*path, "--help"] for path in command_paths(main))],
                         ids=lambda args: " ".join(args))
def test_help_imports_nothing_heavy(args):
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at --help: {out.stdout.strip()}"


def test_installed_script_shows_help():
    out = subprocess.run(["launch", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout
