"""`launch report`: one run's page, a sweep's page from another folder through an `mlflow server`,
and bad input (the sweep's page in a browser: tests/launcher/report/test_browser.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from launcher.cli import main
from tests.cluster_services import launch, mlflow_server, one_error


@pytest.mark.slow
def test_a_run_report_holds_its_curves_visuals_doctor_config_and_command(demo_store, tmp_path):
    from mlflow import MlflowClient

    run_id = demo_store.train_run_id
    result = CliRunner().invoke(main, ["report", run_id[:8], "--tracking-uri", demo_store.uri],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = MlflowClient(demo_store.uri).get_run(run_id)
    written = tmp_path / f"report-{run.info.run_name}.html"
    assert result.output == f"report: {written}\n"
    page = written.read_text()
    assert 'id="curves-chart"' in page
    assert "<figcaption>confusion_matrix.png</figcaption>" in page  # a visual, embedded
    assert page.count("src=\"data:image/png;base64,") >= 3 and "http" not in page.split("<body>")[1]
    assert "likely culprit" in page or "warnings: none" in page  # the doctor's report
    assert "model:\n  name: net" in page and f"launch train --reproduce {run_id} --tracking-uri" in page
    assert "report.html" in [a.path for a in MlflowClient(demo_store.uri).list_artifacts(run_id)]


@pytest.mark.slow
def test_a_sweep_report_from_another_folder_through_an_mlflow_server(demo_store, tmp_path):
    from mlflow import MlflowClient

    shutil.copy(Path(demo_store.uri.removeprefix("sqlite:///")), tmp_path / "server.db")
    server, url = mlflow_server(tmp_path, str(tmp_path / "served-artifacts"))
    try:
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        out, _ = launch("report", demo_store.parent_run_id[:8], "--tracking-uri", url, cwd=elsewhere, timeout=300)
        assert out.returncode == 0, out.stderr
        written = elsewhere / f"report-{demo_store.parent_name}.html"
        assert out.stdout == f"report: {written}\n"
        assert all(name in written.read_text() for name in demo_store.trial_names)
        assert "report.html" in [a.path for a in MlflowClient(url).list_artifacts(demo_store.parent_run_id)]
    finally:
        server.stop()


def test_an_unknown_sweep_or_run_is_one_error_line_and_writes_nothing(store, tmp_path):
    out, _ = launch("report", "no-such-sweep", "--tracking-uri", store, cwd=tmp_path)
    assert one_error(out) == ("error: unknown sweep 'no-such-sweep'; valid: (no sweeps in this store); or give a "
                              "run's id (launch runs lists them)")
    assert not list(tmp_path.glob("*.html"))
