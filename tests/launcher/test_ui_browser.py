"""End to end in a real browser: `launch ui` serves the store, headless Chromium finds the runs.

After a `launch train` and a real `launch sweep` (a parent run with two trials), `launch ui` starts
the MLflow UI and Debian's Chromium, driven by Playwright, finds the experiment, the sweep's
parent run with its trials, a run's valid/acc chart and its confusion-matrix artifact.
Screenshots land in tmp_path; set LAUNCH_UI_SCREENSHOTS=DIR to keep a copy (docs/ uses one).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.launcher.conftest import port_open, processes_mentioning

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 60_000  # a busy 2-core machine renders MLflow's UI slowly

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"),
]


@pytest.fixture
def ui_url(demo_store, tmp_path):
    """`launch ui` on the demo store, as a user starts it; stopped with SIGTERM, leaving nothing behind."""
    err = (tmp_path / "ui.err").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "launcher", "ui", "--tracking-uri", demo_store.uri],
                            stdout=subprocess.PIPE, stderr=err, text=True)
    url = None
    for line in proc.stdout:  # ends when `launch ui` gives up (it waits for the server, bounded)
        if line.startswith("MLflow UI: "):
            url = line.split()[-1]
            break
    assert url, f"launch ui printed no URL: {(tmp_path / 'ui.err').read_text()}"
    yield url
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    err.close()
    assert not port_open(url), "the MLflow server still listens after launch ui stopped"
    assert not processes_mentioning(demo_store.uri), "orphan server processes"


@pytest.fixture
def page(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS,
            headless=True, viewport={"width": 1400, "height": 860})
        context.set_default_timeout(WAIT_MS)
        yield context.new_page()
        context.close()


def shoot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    keep = os.environ.get("LAUNCH_UI_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return path


def test_mlflow_ui_shows_experiment_sweep_charts_and_confusion_matrix(page, demo_store, ui_url, tmp_path):
    page.goto(ui_url + "#/experiments")
    page.get_by_text("Model training", exact=True).click()  # runs live in the UI's model-training view
    page.get_by_role("link", name="launch", exact=True).first.click()
    page.get_by_text(demo_store.parent_name, exact=True).wait_for()
    page.get_by_text("net-digits-").first.wait_for()  # the `launch train` run
    assistant_close = page.locator("button[aria-label=Close]")
    if assistant_close.count():
        assistant_close.first.click()

    # The trials are nested under the sweep's parent run: hidden until it is expanded.
    first_trial, second_trial = demo_store.trial_names
    assert not page.get_by_text(first_trial, exact=True).is_visible()
    parent_row = page.get_by_role("row").filter(has=page.get_by_text(demo_store.parent_name, exact=True))
    parent_row.locator("button[data-component-id*=runnamecellrenderer]").click()
    for trial in (first_trial, second_trial):
        page.get_by_text(trial, exact=True).wait_for()
    shoot(page, tmp_path, "runs-table")

    page.locator("label:has(input[value=CHART])").click()  # the chart view: every run's curves
    page.get_by_placeholder("Search metric charts").fill("valid/")
    page.get_by_text("valid/acc", exact=True).first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    shoot(page, tmp_path, "sweep-charts")

    trial_id = demo_store.trial_run_ids[0]
    page.goto(f"{ui_url}#/experiments/{demo_store.experiment_id}/runs/{trial_id}/model-metrics")
    page.get_by_placeholder("Search metric charts").fill("valid/acc")
    page.get_by_text(f"{first_trial} (valid/acc)").wait_for()  # the chart's legend
    page.locator(".js-plotly-plot").first.wait_for()
    shoot(page, tmp_path, "run-metric-chart")

    page.get_by_role("tab", name="Artifacts").click()
    page.get_by_text("confusion_matrix.png", exact=True).click()
    page.wait_for_function("() => [...document.images].some(i => i.complete && i.naturalWidth >= 200)")
    shoot(page, tmp_path, "confusion-matrix")
