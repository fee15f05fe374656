"""`launch train --precision/--channels-last/--compile` end to end, then `launch eval` and finetune on its checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from launcher.cli import main
from tests.conftest import train_args
from trainlib.checkpoint import LAST, load_safely

SMALL_DIGITS = ["-s", "data.classes=[0,1,2]", "--batch-size", "32", "--epochs", "1", "-s", "visuals.enabled=false"]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_flags_set_the_train_keys():
    result = invoke("train", "--precision", "bf16", "--channels-last", "--compile", "--print-config")
    assert "  precision: bf16\n  channels_last: true\n  compile: default\n" in result.output
    result = invoke("train", "--compile", "max-autotune", "--print-config")
    assert "  compile: max-autotune\n" in result.output


@pytest.mark.slow
def test_bf16_channels_last_compiled_then_eval_and_finetune(tmp_path, store, client):
    """The seed's Net: on this 2-core CPU (no native bf16) ResNet34 in bf16 takes minutes per epoch
    eager and far longer compiled; it is run on the GPU by bench/gpu_throughput.py."""
    result = invoke(*train_args(tmp_path, store, "--model", "net", "--precision", "bf16", "--channels-last",
                                "--compile", *SMALL_DIGITS))
    assert result.exit_code == 0, result.output
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["train.precision"] == "bf16" and run.data.params["train.channels_last"] == "True"
    assert run.data.params["train.compile"] == "default"
    assert run.data.metrics["time/compile_s"] > 0 and run.data.metrics["time/img_per_s"] > 0
    run_dir = Path(run.data.tags["launch.run_dir"])
    weights = load_safely(run_dir / "checkpoints" / LAST)["model"]
    assert not any(k.startswith("_orig_mod.") for k in weights)
    assert all(t.dtype == torch.float32 or not t.is_floating_point() for t in weights.values())

    result = invoke("eval", f"{run.info.run_id}:last", "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    saved = json.loads((run_dir / "eval" / "test-last" / "eval.json").read_text())
    assert saved["acc"] == pytest.approx(run.data.metrics["test/acc"])

    result = invoke(*train_args(tmp_path, store, "--model", "net", "--finetune", f"{run.info.run_id}:last",
                                "-s", "data.classes=[3,4]", "--batch-size", "32", "--epochs", "1",
                                "-s", "visuals.enabled=false", "-s", "tracking.log_model=false"))
    assert result.exit_code == 0, result.output
    assert "loaded " in result.output and "skipped 2 (shape mismatch)" in result.output
