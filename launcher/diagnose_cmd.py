"""`launch diagnose RUN_ID`: the doctor's report on a finished run, read from MLflow."""
from __future__ import annotations

import click

from launcher.guard import guarded


@click.command("diagnose")
@click.argument("run_id")
@click.option("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db).")
@guarded
def diagnose(run_id, tracking_uri):
    """Explain a run: its curves, the warnings raised and when, and the likely culprit
    (data, model or loss/optimizer) with the evidence."""
    from trainlib.diagnose.report import load_report, render

    click.echo(render(load_report(run_id, tracking_uri)))
