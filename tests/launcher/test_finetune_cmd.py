"""`launch train --finetune`: a plain state-dict file in, a tracked run with its report out; bad files refused."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from launcher.cli import main
from tests.conftest import train_args
from tests.weights_files import BAD_FILES, write_bad_file
from trainlib.models import Net


def all_runs(client):
    return [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def test_finetune_from_the_tutorials_net_params_pkl(tmp_path, store, client):
    path = tmp_path / "net_params.pkl"
    torch.save(Net(10, 3).state_dict(), path)  # the tutorial's torch.save(net.state_dict(), 'net_params.pkl')
    args = train_args(tmp_path, store, "--finetune", str(path), "--epochs", "1", "-s", "data.classes=[3,8]",
                      "-s", "tracking.log_model=false", "-s", "finetune.freeze=[conv1,conv2]")
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"finetune from {path}" in result.output
    assert "loaded 8 tensors, skipped 2 (shape mismatch)" in result.output
    assert "skipped fc3.weight: source [10, 84] vs model [2, 84]" in result.output
    assert "frozen: 4 parameter tensors in conv1, conv2" in result.output
    (run,) = all_runs(client)
    assert run.info.status == "FINISHED" and run.data.tags["launch.finetune.source"] == str(path)
    assert run.data.params["finetune.source"] == str(path) and run.data.params["finetune.head_lr_mult"] == "10.0"
    assert {"finetune_report.txt", "finetune_report.json"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"lr", "lr/backbone", "lr/head"} <= set(run.data.metrics)
    assert run.data.metrics["lr/head"] == pytest.approx(10 * run.data.metrics["lr/backbone"])


def test_print_config_shows_the_finetune_section(tmp_path):
    result = CliRunner().invoke(main, ["train", "--print-config", "--finetune", "abc:last",
                                       "-s", "finetune.freeze=backbone"])
    assert result.exit_code == 0, result.output
    assert "source: abc:last" in result.output and "- backbone" in result.output
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("kind", [*BAD_FILES, "missing file", "unknown run id", "resume and finetune"])
def test_bad_finetune_source_is_one_line_exit_2_and_leaves_nothing(kind, tmp_path, store, client):
    path, marker = tmp_path / "weights.pkl", tmp_path / "pwned"
    write_bad_file(kind, path, marker)
    source = {"missing file": str(tmp_path / "nope.pt"), "unknown run id": "0123456789abcdef"}.get(kind, str(path))
    extra = ["--resume", "0123456789abcdef"] if kind == "resume and finetune" else []
    result = CliRunner().invoke(main, train_args(tmp_path, store, "--finetune", source, *extra))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    culprit = "--resume" if extra else source
    assert len(lines) == 1 and lines[0].startswith("error:") and culprit in lines[0], result.stderr
    assert not marker.exists() and not (tmp_path / "runs").exists()
    assert not all_runs(client)
