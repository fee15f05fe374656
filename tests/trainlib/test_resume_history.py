"""A resumed run's history holds each step once; a FINISHED run is not resumed; an interrupted
attempt's half-logged MLflow model does not stay PENDING."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from launcher.cli import main
from trainlib.checkpoint import LAST, load_safely
from trainlib.errors import CheckpointError
from trainlib.observers import EpochObserver
from trainlib.resume import ResumePoint
from trainlib.run import run
from trainlib.tags import RUN_DIR


@pytest.mark.slow
def test_resume_from_an_older_checkpoint_relogs_no_step(tmp_path, run_config, client, store):
    """The killed attempt logged epochs 1-3 but its last checkpoint Tune (or the user) kept is epoch 1."""
    cfg = run_config(epochs=3, batch_size=256)
    kept = tmp_path / "epoch1.pt"

    def keep_epoch_1(report) -> None:
        if report.epoch == 1:
            shutil.copy(report.checkpoint_dir / LAST, kept)

    run(cfg, observers=[EpochObserver(keep_epoch_1)], progress=False, echo=lambda _: None)
    (first,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    run_id, exp_id = first.info.run_id, first.info.experiment_id
    client.set_terminated(run_id, "KILLED")
    pending = client.create_logged_model(exp_id, name="model", source_run_id=run_id)  # a kill mid log_model

    point = ResumePoint(load_safely(kept), run_id, Path(first.data.tags[RUN_DIR]))
    run(cfg, resume=point, progress=False, echo=lambda _: None)

    resumed = client.get_run(run_id)
    assert resumed.info.status == "FINISHED"
    for key in resumed.data.metrics:
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert len(steps) == len(set(steps)), (key, steps)
    for key in ("train/loss", "valid/acc", "valid/best_acc"):
        assert [m.step for m in client.get_metric_history(run_id, key)] == [1, 2, 3], key
    models = client.search_logged_models([exp_id], filter_string=f"source_run_id = '{run_id}'")
    assert pending.model_id not in {m.model_id for m in models}
    assert {str(m.status) for m in models} <= {"READY", "LoggedModelStatus.READY"}

    with pytest.raises(CheckpointError, match="FINISHED"):
        run(cfg, resume=point, progress=False, echo=lambda _: None)
    result = CliRunner().invoke(main, ["train", "--no-progress", "--tracking-uri", store, "--resume", run_id])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: run {run_id} is FINISHED"), result.stderr
    assert [m.step for m in client.get_metric_history(run_id, "test/acc")] == [3]
