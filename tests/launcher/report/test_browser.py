"""The report of a real sweep (the demo store's: a parent run, two trials), written by `launch report`
from another folder and opened from disk in headless Chromium: the trials table (sortable), the
curves chart and the importance chart are there, and the page asks for nothing over the network."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster_services import launch
from tests.launcher.conftest import SWEEP
from tests.launcher.test_ui_browser import CHROMIUM, page, shoot  # noqa: F401 - `page` is a fixture
from trainlib import tags as tag

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"),
]
CHARTS = ("#curves-chart", "#importance-chart", "#parameters-chart")


def trial_order(page) -> list[str]:  # noqa: F811
    return page.locator("#trials-table tbody tr td:first-child").all_inner_texts()


def test_sweep_report_opens_from_disk_with_table_curves_and_importance(page, demo_store, tmp_path):  # noqa: F811
    out, _ = launch("report", SWEEP, "--tracking-uri", demo_store.uri, "-o", "sweep.html", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"report: {tmp_path / 'sweep.html'}\n"
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto((tmp_path / "sweep.html").as_uri())

    assert sorted(trial_order(page)) == sorted(demo_store.trial_names)
    for chart in CHARTS:
        assert page.eval_on_selector(chart, "img => img.complete && img.naturalWidth > 300"), chart
    assert "optimizer.name" in page.locator("#importance-table").inner_text()
    assert "only 2 trials" in page.locator("#importance-caution").inner_text()
    assert "fANOVA" in page.locator("#importance").inner_text()
    verdicts = page.locator("#trials-table tbody tr td:last-child").all_inner_texts()
    assert len(verdicts) == 2 and all(verdicts)
    best = page.locator("#best").inner_text()
    assert "launch train --reproduce " in best and "optimizer:" in best

    header = page.locator("#trials-table th", has_text="best valid/acc")
    header.click()
    ascending = trial_order(page)
    header.click()
    assert trial_order(page) == ascending[::-1]  # sorted by the clicked column, then reversed
    shot = shoot(page, tmp_path, "sweep-report")
    assert shot.stat().st_size > 20_000
    assert all(url.startswith(("file:", "data:")) for url in requested), requested


def test_the_sweep_wrote_its_report_in_its_folder_and_on_its_parent_run(demo_store):
    from mlflow import MlflowClient

    client = MlflowClient(demo_store.uri)
    parent = client.get_run(demo_store.parent_run_id)
    written = Path(parent.data.tags[tag.SWEEP_DIR]) / "report.html"
    assert demo_store.trial_names[0] in written.read_text()
    assert "report.html" in [a.path for a in client.list_artifacts(demo_store.parent_run_id)]
