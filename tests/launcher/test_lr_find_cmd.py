"""`launch lr-find` end to end on digits: a suggestion inside the range that trains well."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from launcher.cli import main
from tests.observed import one_thread

# PyTorch's default init: the seed's N(0, 0.01) head stays on a plateau through a 100-batch test
ARGS = ["--device", "cpu", "--experiment", "test", "-s", "init.name=default", "-s", "visuals.enabled=false"]


def invoke(*args: str):
    with one_thread():
        return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_lr_find_suggests_an_lr_that_trains_well(tmp_path: Path, store: str, client):
    out = tmp_path / "runs"
    result = invoke("lr-find", *ARGS, "--tracking-uri", store, "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    suggested = float(re.search(r"suggested lr: (\S+)", result.output).group(1))
    assert 1e-5 < suggested < 10.0
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["launch.kind"] == "lr-find"
    assert run.info.run_name.startswith("lr-find-net-digits")
    assert run.data.metrics["lr_find/suggested_lr"] == pytest.approx(suggested, rel=1e-2)
    assert {"lr_find.png", "lr_find.csv"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    png = Path(client.download_artifacts(run.info.run_id, "lr_find.png", str(tmp_path)))
    assert png.read_bytes()[:4] == b"\x89PNG"

    trained = invoke("train", "--no-progress", *ARGS, "--tracking-uri", store, "--output-dir", str(out),
                     "--epochs", "3", "--lr", str(suggested))
    assert trained.exit_code == 0, trained.output
    valid = [float(v) / 100 for v in re.findall(r"valid loss \S+ acc (\S+)%", trained.output)]
    assert valid[-1] >= 0.7, f"lr {suggested} trained to only {valid}"


@pytest.mark.parametrize("args, param, value", [
    (["-s", "optimizer.name=lbfgs", "-s", "optimizer.max_iter=2"], "optimizer.name", "lbfgs"),
    (["-s", "transforms.batch=[mixup]"], "transforms.batch", "mixup"),
], ids=["lbfgs", "mixup"])
def test_lr_find_steps_like_training(args, param, value, tmp_path: Path, store: str, client):
    result = invoke("lr-find", *ARGS, *args, "--tracking-uri", store, "--output-dir", str(tmp_path / "runs"),
                    "--num-iters", "12", "--start-lr", "1e-4", "--end-lr", "1")
    assert result.exit_code == 0, result.output
    assert re.search(r"tested \d+ batches", result.output)
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert run.info.status == "FINISHED" and value in run.data.params[param]


@pytest.mark.parametrize("args, culprit", [
    (["--start-lr", "1", "--end-lr", "0.1"], "--start-lr"),
    (["--model", "vgg"], "unknown model 'vgg'"),
    (["--num-iters", "1"], "--num-iters"),
])
def test_bad_input_is_one_line_and_leaves_no_run(args, culprit, tmp_path, store, client):
    result = CliRunner().invoke(main, ["lr-find", "--tracking-uri", store, "--experiment", "test",
                                       "--output-dir", str(tmp_path / "runs"), *args])
    assert result.exit_code == 2 and culprit in result.stderr and "Traceback" not in result.output
    assert all(not client.search_runs([e.experiment_id]) for e in client.search_experiments())
    assert not (tmp_path / "runs").exists()
