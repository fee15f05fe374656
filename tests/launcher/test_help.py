"""`launch --help` must not import torch, ray or mlflow (it has to be instant)."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "ray", "mlflow", "tensorboardX", "torchvision")

PROBE = """
import sys
from click.testing import CliRunner
from launcher.cli import main
result = CliRunner().invoke(main, {args!r})
assert result.exit_code == 0, result.output
print(",".join(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize("args", [["--help"], *([cmd, "--help"]
                                                for cmd in ("train", "ui", "runs", "compare", "catalog", "eval"))])
def test_help_imports_nothing_heavy(args):
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported at --help: {out.stdout.strip()}"


def test_installed_script_shows_help():
    out = subprocess.run(["launch", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout
