"""`launch eval` on a finished run, and the run's MLflow PyTorch model loaded back."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from launcher.cli import main
from tests.shared_runs import forget_artifact_locations


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def finished(default_run, tmp_path_factory):
    """The session's default run (tests/conftest.py) in this module's own copy of its store: eval
    writes into the run's folder and `--log` onto the run."""
    run = default_run.copy_to(tmp_path_factory.mktemp("eval") / "store")
    client = run.client()
    yield run.root, run.uri, client, client.get_run(run.run_id), run.output
    forget_artifact_locations(run.run_id)


def test_eval_of_the_last_checkpoint_matches_the_runs_test_accuracy(finished):
    _, store, _, run, _ = finished
    result = invoke("eval", f"{run.info.run_id}:last", "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    acc = run.data.metrics["test/acc"]
    assert f"test acc {acc:.2%}" in result.output and "recall:" in result.output and "precision:" in result.output
    out = Path(run.data.tags["launch.run_dir"]) / "eval" / "test-last"
    saved = json.loads((out / "eval.json").read_text())
    assert saved["acc"] == pytest.approx(acc, abs=1e-6)
    assert saved["loss"] == pytest.approx(run.data.metrics["test/loss"])
    assert saved["epoch"] == 2 and saved["run_id"] == run.info.run_id
    assert (out / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")


def test_eval_of_a_checkpoint_file_on_valid_matches_the_logged_valid_accuracy(finished, tmp_path):
    _, _, client, run, _ = finished
    best = Path(run.data.tags["launch.run_dir"]) / "checkpoints" / "best.pt"
    result = invoke("eval", str(best), "--split", "valid", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert saved["acc"] == pytest.approx(run.data.metrics["valid/best_acc"], abs=1e-6)
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert written == {"eval.json", "confusion_matrix.png", "per_class_report.txt"}


def test_eval_log_records_on_the_source_run_and_keeps_its_status(finished):
    _, store, client, run, _ = finished
    result = invoke("eval", run.info.run_id, "--tracking-uri", store, "--log")
    assert result.exit_code == 0, result.output
    after = client.get_run(run.info.run_id)
    assert after.info.status == "FINISHED" and after.info.end_time == run.info.end_time
    best_epoch = torch.load(Path(run.data.tags["launch.run_dir"]) / "checkpoints" / "best.pt",
                            weights_only=True)["epoch"]
    (metric,) = client.get_metric_history(run.info.run_id, "eval/test/acc")
    assert metric.step == best_epoch and 0.0 < metric.value <= 1.0
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "eval/test-best")}
    assert "eval/test-best/confusion_matrix.png" in logged and "eval/test-best/per_class_report.txt" in logged


@pytest.mark.parametrize("args, culprit", [
    (["0123456789abcdef"], "0123456789abcdef"),
    (["RUN:last", "-s", "data.classes=[0,1]"], "does not fit model 'net'"),
    # the README's old example: a subset of a 10-class checkpoint's classes; the hint must not ask for -s again
    (["RUN", "-s", "data.classes=[6,7,8,9]"], "the -s settings given build another model than the checkpoint's: "
                                            "evaluate it on the data and classes it was trained on, or finetune"),
    (["RUN", "-s", "model.name=nope"], "unknown model 'nope'"),
])
def test_bad_eval_input_is_one_line_exit_2_and_writes_nothing(finished, args, culprit):
    _, store, client, run, _ = finished
    run_dir = Path(run.data.tags["launch.run_dir"])
    before = sorted(run_dir.rglob("*"))
    args = [a.replace("RUN", run.info.run_id) for a in args]
    result = CliRunner().invoke(main, ["eval", *args, "--tracking-uri", store, "--log"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and culprit in lines[0], result.stderr
    assert sorted(run_dir.rglob("*")) == before
    assert len(client.search_runs([run.info.experiment_id])) == 1


def test_mlflow_pytorch_model_predicts_like_the_checkpoint(finished, monkeypatch):
    import mlflow
    from mlflow.models import get_model_info

    from trainlib.models import Net

    _, store, client, run, output = finished
    assert f"MLflow model:    runs:/{run.info.run_id}/model" in output
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    uri = f"runs:/{run.info.run_id}/model"
    loaded = mlflow.pytorch.load_model(uri)
    net = Net(10, 3)
    net.load_state_dict(torch.load(Path(run.data.tags["launch.run_dir"]) / "checkpoints" / "last.pt",
                                   weights_only=True)["model"])
    x = torch.randn(7, 3, 32, 32)  # another batch size than the logged input example
    assert torch.equal(loaded(x), net.eval()(x))
    info = get_model_info(uri)
    assert info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 3, 32, 32)
    assert info.saved_input_example_info is not None
    version = mlflow.register_model(uri, "digits-net")  # the model registry takes it too
    assert torch.equal(mlflow.pytorch.load_model(f"models:/digits-net/{version.version}")(x), loaded(x))
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
