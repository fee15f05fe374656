"""Bad input: one clear line, exit code 2, no traceback, no run and nothing written."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from launcher.cli import main
from tests.conftest import train_args


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


CASES = {
    "missing config file": (lambda t: ["--config", str(t / "nope.yaml")], "nope.yaml"),
    "malformed yaml": (lambda t: ["--config", _write(t, "bad.yaml", "epochs: [1\n")], "line"),
    "unknown key": (lambda t: ["-s", "optimizer.lrr=0.1"], "optimizer.lrr"),
    "unknown top key": (lambda t: ["-s", "epoch=3"], "'epoch'"),
    "unknown model": (lambda t: ["--model", "vgg16"], "net, resnet34"),
    "unknown optimizer": (lambda t: ["-s", "optimizer.name=sgdd"], "valid:"),
    "negative lr": (lambda t: ["--lr", "-0.1"], "optimizer.lr"),
    "zero epochs": (lambda t: ["--epochs", "0"], "epochs"),
    "bad override syntax": (lambda t: ["-s", "optimizer.lr"], "dotted.key=value"),
    "unknown resume id": (lambda t: ["--resume", "0123456789abcdef"], "0123456789abcdef"),
    "resume a non-checkpoint": (lambda t: ["--resume", _write(t, "x.pt", "not a checkpoint")], "x.pt"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(case, tmp_path, store, client):
    make_args, culprit = CASES[case]
    result = CliRunner().invoke(main, train_args(tmp_path, store, *make_args(tmp_path)))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and culprit in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()
    assert all(not client.search_runs([e.experiment_id]) for e in client.search_experiments())


def test_unwritable_output_dir(tmp_path, store, client):
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = ["train", "--no-progress", "--tracking-uri", store, "--output-dir", str(blocker / "sub")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "not writable" in result.stderr
    assert all(not client.search_runs([e.experiment_id]) for e in client.search_experiments())


def test_installed_script_reports_without_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "launcher", "train", "--model", "nope"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("error: unknown model 'nope'")
    assert "Traceback" not in out.stderr and not (tmp_path / "mlflow.db").exists()
