"""Hostile config and sweep files at the CLI: one `error:` line, exit 2, nothing written."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from launcher.cli import main
from tests.conftest import train_args

BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x80"
SWEEP = "name: t\nspace:\n  optimizer.lr: {uniform: [0.01, 0.1]}\n"


def _one_error_line(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


CONFIGS = {
    "duplicate key": (b"epochs: 2\noptimizer:\n  lr: 0.1\n  lr: 0.2\n", ["c.yaml:4: optimizer.lr", "line 3"]),
    "non-finite in yaml": (b"optimizer:\n  lr: .inf\n", ["c.yaml:2: optimizer.lr", "finite"]),
    "binary file": (BINARY, ["c.yaml", "not UTF-8"]),
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_bad_config_file(case, tmp_path, store, client):
    data, fragments = CONFIGS[case]
    (tmp_path / "c.yaml").write_bytes(data)
    result = CliRunner().invoke(main, train_args(tmp_path, store, "--config", str(tmp_path / "c.yaml")))
    _one_error_line(result, *fragments)
    assert not (tmp_path / "runs").exists()
    assert all(not client.search_runs([e.experiment_id]) for e in client.search_experiments())


@pytest.mark.parametrize("args", [["--lr", "inf"], ["-s", "optimizer.lr=nan"], ["-s", "optimizer.lr=.inf"],
                                  ["-s", "diagnose.max_gap=.nan"]])
def test_non_finite_numbers_on_the_command_line(args, tmp_path, store):
    result = CliRunner().invoke(main, train_args(tmp_path, store, *args))
    _one_error_line(result, args[1].split("=")[0].replace("inf", "optimizer.lr"))
    assert not (tmp_path / "runs").exists()


SWEEPS = {
    "duplicate key": (SWEEP.encode() + b"  optimizer.lr: [0.1]\n", ["sweep.yaml:4: space.optimizer.lr", "line 3"]),
    "non-finite range": (SWEEP.replace("0.1]", ".inf]").encode(), ["sweep.yaml:3: space.optimizer.lr", "finite"]),
    "non-finite base": (b"name: t\nbase:\n  optimizer: {lr: .nan}\nspace: {seed: [1]}\n",
                        ["sweep.yaml:3: base.optimizer.lr", "finite"]),
    "binary file": (BINARY, ["sweep.yaml", "not UTF-8"]),
}


@pytest.mark.parametrize("case", sorted(SWEEPS))
def test_bad_sweep_file(case, tmp_path):
    data, fragments = SWEEPS[case]
    path = tmp_path / "sweep.yaml"
    path.write_bytes(data)
    result = CliRunner().invoke(main, ["sweep", str(path), "--dry-run", "--output-dir", str(tmp_path / "runs"),
                                       "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    _one_error_line(result, *fragments)
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["sweep.yaml"]
