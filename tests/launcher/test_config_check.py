"""Checking a config costs no torch: `launch train --print-config` and a refused config, each in a
fresh `python -m launcher` process, import neither torch nor the training loop (the registries'
signatures come from trainlib.signatures). `bench/config_check.py` times them."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

HEAVY = ("torch", "torchvision", "trainlib.engine", "trainlib.run", "trainlib.visuals", "trainlib.observers")


def launch(*args: str, cwd) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the real CLI; also return the modules it imported (from -X importtime)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "launcher", *args], cwd=cwd,
                         capture_output=True, text=True)
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    out.stderr = "\n".join(line for line in out.stderr.splitlines() if not line.startswith("import time:"))
    return out, imported


def test_print_config_prints_the_resolved_config_without_torch(tmp_path):
    out, imported = launch("train", "--print-config", "-s", "optimizer.name=adamw", "--epochs", "3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    cfg = yaml.safe_load(out.stdout)
    assert cfg["epochs"] == 3 and cfg["optimizer"]["name"] == "adamw" and cfg["optimizer"]["weight_decay"] == 0.01
    assert cfg["visuals"]["gradcam"]["count"] == 4 and cfg["transforms"]["train"] is None
    assert "trainlib.config" in imported and not imported & set(HEAVY)
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("override, says", [
    ("epochs=zz", "error: bad value for 'epochs': Input should be a valid integer"),
    ("nope=1", "error: unknown config key 'nope'; allowed: model, data,"),
    ("optimizer.name=nope", "error: unknown optimizer 'nope'; valid: adadelta, adagrad, adam,"),
    ("optimizer.momentum=-1", "error: bad value -1 for 'optimizer.momentum' (float >= 0)"),
    ("transforms.train=[random_crop, mixup]", "error: 'transforms.train[1]': mixup mixes whole batches"),
])
def test_a_refused_config_is_one_line_exit_2_without_torch(tmp_path, override, says):
    out, imported = launch("train", "-s", override, cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [out.stderr.strip()] and out.stderr.startswith(says), out.stderr
    assert "Traceback" not in out.stderr and not imported & set(HEAVY)
    assert list(tmp_path.iterdir()) == []
