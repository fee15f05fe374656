"""`launch report`: one run's page, a sweep's page from another folder through an `mlflow server`,
and bad input (the sweep's page in a browser: tests/launcher/report/test_browser.py)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from launcher.cli import main
from tests.cluster_services import launch, one_error
from tests.shared_runs import forget_artifact_locations


@pytest.mark.slow
def test_a_run_report_holds_its_curves_visuals_doctor_config_and_command(default_run_copy, tmp_path):
    run_id = default_run_copy.run_id  # a copy: the report logs its page on the run
    result = CliRunner().invoke(main, ["report", run_id[:8], "--tracking-uri", default_run_copy.uri],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    client = default_run_copy.client()
    run = client.get_run(run_id)
    written = tmp_path / f"report-{run.info.run_name}.html"
    assert result.output == f"report: {written}\n"
    page = written.read_text()
    assert 'id="curves-chart"' in page
    assert "<figcaption>confusion_matrix.png</figcaption>" in page  # a visual, embedded
    assert page.count("src=\"data:image/png;base64,") >= 3 and "http" not in page.split("<body>")[1]
    assert "likely culprit" in page or "warnings: none" in page  # the doctor's report
    assert "model:\n  name: net" in page and f"launch train --reproduce {run_id} --tracking-uri" in page
    assert "report.html" in [a.path for a in client.list_artifacts(run_id)]


@pytest.mark.slow
def test_a_sweep_report_from_another_folder_through_an_mlflow_server(demo_store, mlflow_service, tmp_path):
    from mlflow import MlflowClient

    url, _ = mlflow_service  # serves a copy of the demo store: the report logs its page on the parent run
    out, _ = launch("report", demo_store.parent_run_id[:8], "--tracking-uri", url, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    written = tmp_path / f"report-{demo_store.parent_name}.html"
    assert out.stdout == f"report: {written}\n"
    assert all(name in written.read_text() for name in demo_store.trial_names)
    assert "report.html" in [a.path for a in MlflowClient(url).list_artifacts(demo_store.parent_run_id)]
    forget_artifact_locations(demo_store.parent_run_id)  # this process reads the demo store's own next


def test_an_unknown_sweep_or_run_is_one_error_line_and_writes_nothing(store, tmp_path):
    out, _ = launch("report", "no-such-sweep", "--tracking-uri", store, cwd=tmp_path)
    assert one_error(out) == ("error: unknown sweep 'no-such-sweep'; valid: (no sweeps in this store); or give a "
                              "run's id (launch runs lists them)")
    assert not list(tmp_path.glob("*.html"))
