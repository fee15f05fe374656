"""`launch diagnose RUN_ID` on real runs, and a run stopped by a diagnosis check from the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from launcher.cli import main
from tests.conftest import train_args
from tests.observed import healthy_run, one_thread, train_once
from trainlib import tags as tag


def invoke(*args: str):
    with one_thread():
        return CliRunner().invoke(main, list(args))


def test_healthy_run_report_summarizes_curves_and_blames_nothing(tmp_path_factory, empty_store_template):
    observed = healthy_run(tmp_path_factory, empty_store_template)
    result = invoke("diagnose", observed.run_id, "--tracking-uri", observed.store)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"run {observed.run_id}" in out and "net on digits, FINISHED, 5/5 epochs" in out
    for curve in ("train/loss", "valid/loss", "train/acc", "valid/acc", "lr"):
        assert f"  {curve}" in out
    assert "test/acc" in out and "accuracy gap" in out
    assert "warnings: none" in out and "likely culprit: none" in out


def test_lr_too_high_stops_the_run_and_the_doctor_blames_the_optimizer(tmp_path: Path, store: str, client):
    result = invoke(*train_args(tmp_path, store, "--device", "cpu", "--lr", "10", "--epochs", "2",
                                "-s", "diagnose.stop_on=[nan, divergence]", "-s", "diagnose.every_batches=10",
                                "-s", "visuals.enabled=false"))
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("stopped: loss diverging at epoch 1 batch")
    assert "diagnose.stop_on: divergence" in lines[0] and "Traceback" not in result.output
    (run,) = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    tags = run.data.tags
    assert run.info.status == "FAILED" and "diverging" in tags[tag.STOP_REASON] and "RunStopped" in tags["launch.error"]
    assert tag.WARNING_PREFIX + "divergence" in tags
    assert "valid/acc" not in run.data.metrics  # stopped inside epoch 1

    report = invoke("diagnose", run.info.run_id, "--tracking-uri", store)
    assert report.exit_code == 0, report.output
    assert "FAILED, 0/2 epochs" in report.output and "stopped: loss diverging" in report.output
    assert "likely culprit: loss-optimizer" in report.output and "lower the learning rate" in report.output


def test_unknown_run_id_is_one_line_exit_2(store):
    result = CliRunner().invoke(main, ["diagnose", "0123456789abcdef", "--tracking-uri", store])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: unknown run '0123456789abcdef' in {store}; list runs with: launch runs"
    from launcher.docs import DOCS

    shown = "`" + result.stderr.strip().replace("0123456789abcdef", "...").replace(store, "<store>") + "`"
    assert shown in (DOCS / "diagnose.md").read_text().replace("\n", " ")  # the guide shows what is printed


def test_missing_store_is_reported_not_created(tmp_path: Path):
    result = CliRunner().invoke(main, ["diagnose", "abc"])
    assert result.exit_code == 2 and "no MLflow store" in result.stderr
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_json_gives_the_verdict_culprit_evidence_and_deciding_probe(tmp_path_factory, empty_store_template):
    from tests.trainlib.diagnose.planted import planted_datasets
    from tests.trainlib.diagnose.test_verdict import FAULTS, QUIET

    with planted_datasets():
        observed = train_once(tmp_path_factory, empty_store_template, "deep-shuffled_labels", QUIET,
                              FAULTS["shuffled_labels"][0])
        result = invoke("diagnose", observed.run_id, "--tracking-uri", observed.store, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["run_id"] == observed.run_id and data["culprit"] == "data"
    assert data["deciding_probe"] == "label_shuffle" and "labels carry no signal" in data["verdict"]
    assert data["evidence"] and 0 < data["confidence"] <= 1 and "chance" in data["ambiguous"]
    assert {p["name"]: p["outcome"] for p in data["probes"]}["label_shuffle"] == "no_signal"
    assert all(p["seconds"] > 0 for p in data["probes"]) and data["step0"]["num_classes"] == 10
    assert "running the probes" in result.stderr


@pytest.mark.slow
def test_probe_flag_on_a_healthy_run_finds_every_part_able_to_learn(tmp_path_factory, empty_store_template):
    observed = healthy_run(tmp_path_factory, empty_store_template)
    result = invoke("diagnose", observed.run_id, "--tracking-uri", observed.store, "--probe")
    assert result.exit_code == 0, result.output
    out = result.output
    for name, outcome in (("overfit_one_batch", "fits"), ("label_shuffle", "signal"), ("zero_inputs", "signal")):
        assert f"  {name} (" in out and f") {outcome}: " in out, name
    assert "  lr_probe (" in out and "step 0 (first batch" in out and "initial loss 2.3" in out
    assert "likely culprit: none" in out and "the probes found every part able to learn" in out
    assert {"probes.png", "diagnostics.json"} <= {a.path for a in observed.client().list_artifacts(observed.run_id)}
