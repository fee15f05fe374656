"""`launch diagnose RUN_ID`: the doctor's report on a finished run, read from MLflow."""
from __future__ import annotations

import click

from launcher.guard import guarded
from launcher.store import find_run, open_client, tracking_uri_option


@click.command("diagnose")
@click.argument("run_id")  # a full id or a unique prefix, as `launch runs` prints it
@tracking_uri_option
@guarded
def diagnose(run_id, tracking_uri):
    """Explain a run: its curves, the warnings raised and when, and the likely culprit
    (data, model or loss/optimizer) with the evidence."""
    from trainlib.diagnose.report import load_report, render

    client = open_client(tracking_uri)
    click.echo(render(load_report(client, find_run(client, run_id).info.run_id)))
