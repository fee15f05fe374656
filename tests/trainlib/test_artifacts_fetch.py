"""The tracking store is the source of truth for checkpoints: with the run folder gone (another
machine), `launch eval`, `--resume` and `--finetune` given a run id (or its 8-character prefix)
download the checkpoint from the run's artifacts, say so in one line, and load it with the
same weights_only rules."""
from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from launcher.cli import main
from tests.conftest import train_args


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def gone(default_run_copy, tmp_path, monkeypatch):
    """The shared default run (2 epochs, finished) in this test's copy of its store, its run folder
    deleted; a cache and a working dir that never saw it."""
    shutil.rmtree(default_run_copy.run_dir)
    monkeypatch.setenv("LAUNCH_CACHE_DIR", str(tmp_path / "cache"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return default_run_copy


@pytest.mark.slow
def test_eval_by_prefix_downloads_the_checkpoint_from_the_store(gone, tmp_path):
    prefix = gone.run_id[:8]
    result = invoke("eval", f"{prefix}:last", "--tracking-uri", gone.uri)
    assert result.exit_code == 0, result.output
    fetched = tmp_path / "cache" / "runs" / gone.run_id / "checkpoints" / "last.pt"
    assert f"downloaded checkpoints/last.pt of run {prefix}" in result.output and str(fetched) in result.output
    assert fetched.is_file()
    test_acc = gone.client().get_run(gone.run_id).data.metrics["test/acc"]
    assert f"test acc {test_acc:.2%}" in result.output  # the run's test accuracy is its final model's
    again = invoke("eval", f"{prefix}:last", "--tracking-uri", gone.uri)  # cached: no second download
    assert again.exit_code == 0 and "downloaded" not in again.output


@pytest.mark.slow
def test_resume_and_finetune_by_prefix_use_the_fetched_checkpoints(gone, tmp_path):
    prefix, store, client = gone.run_id[:8], gone.uri, gone.client()
    resumed = invoke(*train_args(tmp_path, store, "--resume", prefix, "--epochs", "3", "-s", "tracking.log_model=false"))
    assert resumed.exit_code == 0, resumed.output
    assert "downloaded checkpoints/last.pt" in resumed.output
    run = client.get_run(gone.run_id)
    assert run.info.status == "FINISHED" and len(client.get_metric_history(run.info.run_id, "train/loss")) == 3
    continued_in_the_output_folder(run, tmp_path)
    tuned = invoke(*train_args(tmp_path, store, "--finetune", f"{prefix}:best", "--epochs", "1",
                               "-s", "tracking.log_model=false"))
    assert tuned.exit_code == 0, tuned.output
    assert "finetune from" in tuned.output


@pytest.mark.slow
def test_a_tampered_checkpoint_artifact_is_refused(gone):
    client = gone.client()
    artifact = Path(client.get_run(gone.run_id).info.artifact_uri.removeprefix("file://")) / "checkpoints" / "best.pt"
    assert artifact.is_file()

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    artifact.write_bytes(pickle.dumps(Payload()))
    result = invoke("eval", gone.run_id[:8], "--tracking-uri", gone.uri)
    assert result.exit_code == 2
    assert "error: " in result.output and "not a PyTorch file" in result.output or "refusing to load" in result.output


def test_a_run_without_checkpoint_artifacts_says_so(store, client):
    exp = client.create_experiment("bare")
    run = client.create_run(exp, tags={"launch.run_dir": "/nowhere/run"})
    client.set_terminated(run.info.run_id)
    result = invoke("eval", run.info.run_id[:8], "--tracking-uri", store)
    assert result.exit_code == 2
    assert "is not on this machine and the run has no artifact checkpoints/best.pt" in result.output


def test_diagnose_takes_the_prefix_launch_runs_prints(store, client):
    exp = client.create_experiment("diag")
    run = client.create_run(exp, run_name="short-id")
    for step, loss in enumerate([2.0, 1.5, 1.2], start=1):
        client.log_metric(run.info.run_id, "train/loss", loss, step=step)
    client.set_terminated(run.info.run_id)
    result = invoke("diagnose", run.info.run_id[:8], "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    assert "short-id" in result.output
    unknown = invoke("diagnose", "ffff0000", "--tracking-uri", store)
    assert unknown.exit_code == 2 and "unknown run 'ffff0000'" in unknown.output


@pytest.mark.slow
def test_an_interrupted_run_is_resumed_by_prefix_on_a_machine_without_its_folder(tmp_path, run_config, store, client,
                                                                                 monkeypatch):
    from trainlib.observers import EpochObserver
    from trainlib.run import run

    def interrupt_after_epoch_1(report) -> None:
        if report.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(run_config(epochs=2, batch_size=256, tracking={"log_model": False}),
            observers=[EpochObserver(interrupt_after_epoch_1)], progress=False, echo=lambda _: None)
    (killed,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert killed.info.status == "KILLED"
    assert {a.path for a in client.list_artifacts(killed.info.run_id, "checkpoints")} == {
        "checkpoints/best.pt", "checkpoints/last.pt"}
    shutil.rmtree(killed.data.tags["launch.run_dir"])
    monkeypatch.setenv("LAUNCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path / "store")

    prefix = killed.info.run_id[:8]
    resumed = invoke(*train_args(tmp_path, store, "--resume", prefix, "-s", "tracking.log_model=false"))
    assert resumed.exit_code == 0, resumed.output
    assert "downloaded checkpoints/last.pt" in resumed.output
    run_after = client.get_run(killed.info.run_id)
    assert run_after.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(killed.info.run_id, "train/loss")] == [1, 2]
    continued_in_the_output_folder(run_after, tmp_path)


def continued_in_the_output_folder(run, tmp_path: Path) -> None:
    """A run resumed from downloaded checkpoints continues in the configured output folder (--output-dir), in a
    folder named as a new run's; the download cache keeps nothing of it."""
    run_dir = Path(run.data.tags["launch.run_dir"])
    assert run_dir == tmp_path / "runs" / f"{run.info.run_name}-{run.info.run_id[:8]}"
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"best.pt", "last.pt"}
    assert (run_dir / "tb").is_dir() and (run_dir / "per_class_report.txt").is_file()
    assert not (tmp_path / "cache" / "runs" / run.info.run_id).exists()
