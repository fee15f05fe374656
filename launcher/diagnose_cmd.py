"""`launch diagnose RUN_ID`: the doctor's report on a finished run, read from MLflow."""
from __future__ import annotations

import click

from launcher.guard import guarded
from launcher.store import open_client, tracking_uri_option


@click.command("diagnose")
@click.argument("run_id")
@tracking_uri_option
@guarded
def diagnose(run_id, tracking_uri):
    """Explain a run: its curves, the warnings raised and when, and the likely culprit
    (data, model or loss/optimizer) with the evidence."""
    from trainlib.diagnose.report import load_report, render

    click.echo(render(load_report(open_client(tracking_uri), run_id)))
