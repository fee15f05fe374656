"""One run's report: its curves, its visuals (the PNG artifacts), the doctor's report, its config
and the command that re-runs it."""
from __future__ import annotations

import tempfile
from pathlib import Path

from launcher.report import html
from launcher.report.charts import plot_run_curves
from trainlib.tracking.artifact_reads import artifact_text

MAX_VISUALS = 40  # PNG artifacts embedded; a run logging visuals every epoch has many
SKIPPED_FOLDERS = ("checkpoints", "model")


def rerun_command(run_id: str, uri: str) -> str:
    return f"launch train --reproduce {run_id} --tracking-uri {uri}"


def png_artifacts(client, run_id: str, folder: str | None = None) -> list[str]:
    """The run's PNG artifacts (depth first, checkpoints and the MLflow model skipped), at most MAX_VISUALS."""
    found: list[str] = []
    for entry in client.list_artifacts(run_id, folder):
        if len(found) >= MAX_VISUALS:
            break
        if entry.is_dir and entry.path not in SKIPPED_FOLDERS:
            found += png_artifacts(client, run_id, entry.path)
        elif entry.path.endswith(".png"):
            found.append(entry.path)
    return found[:MAX_VISUALS]


def visuals_section(client, run_id: str) -> str:
    paths = png_artifacts(client, run_id)
    if not paths:
        return html.section("Visuals", "visuals", html.paragraph("this run logged no pictures", "note"))
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            png = Path(client.download_artifacts(run_id, path, tmp)).read_bytes()
            parts.append(f"<figure>{html.image(png, path)}<figcaption>{path}</figcaption></figure>")
    return html.section("Visuals", "visuals", *parts)


def build_run_report(client, uri: str, run) -> tuple[str, str]:
    """(title, HTML page) of one run."""
    from trainlib.diagnose.doctor import recorded_verdict
    from trainlib.diagnose.report import render

    run_id = run.info.run_id
    report, verdict = recorded_verdict(client, run_id)
    title = f"run {run.info.run_name} ({run_id[:8]}): {report.model} on {report.dataset}, {run.info.status}"
    curves = (html.image(html.figure_png(lambda out: plot_run_curves(report.curves, title, out)), "curves",
                         "curves-chart") if report.curves else html.paragraph("no epoch completed", "note"))
    config = artifact_text(client.tracking_uri, run, "config.yaml")
    sections = [
        html.section("Curves", "curves", curves),
        visuals_section(client, run_id),
        html.section("The doctor's report", "doctor", html.paragraph(f"verdict: {verdict.line()}"),
                     html.preformatted(render(report, verdict))),
        html.section("Config", "config", html.preformatted(config) if config else
                     html.paragraph("no config.yaml artifact", "note")),
        html.section("Re-run it", "command", html.preformatted(rerun_command(run_id, uri))),
    ]
    return title, html.page(title, sections)
