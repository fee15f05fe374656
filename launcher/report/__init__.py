"""`launch report`: one self-contained HTML page on a sweep or a run, logged to it as `report.html`."""
from __future__ import annotations

import tempfile
from pathlib import Path

from trainlib import tags as tag

ARTIFACT = "report.html"


def write_report(client, uri: str, run, path: Path, drawn=None) -> Path:
    """The report of `run` (a sweep's parent run, or any run) written to `path` and logged to that run;
    `drawn`: a sweep's summary in hand (launcher.report.sweep_report.Drawn), not read and drawn again."""
    from launcher.report.run_report import build_run_report
    from launcher.report.sweep_report import build_sweep_report

    if run.data.tags.get(tag.KIND) == "sweep":
        _, page = build_sweep_report(client, uri, run, drawn)
    else:
        _, page = build_run_report(client, uri, run)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    with tempfile.TemporaryDirectory() as tmp:  # logged under its artifact name, whatever the file is called
        logged = Path(tmp) / ARTIFACT
        logged.write_text(page)
        client.log_artifact(run.info.run_id, str(logged))
    return path
