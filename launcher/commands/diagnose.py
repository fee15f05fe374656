"""`launch diagnose RUN_ID`: the doctor's report on a finished run, read from MLflow."""
from __future__ import annotations

import json

import click

from launcher.guard import guarded
from launcher.tracking_reads import find_run, open_client, tracking_uri_option


@click.command("diagnose")
@click.argument("run_id")  # a full id or a unique prefix, as `launch runs` prints it
@click.option("--probe", is_flag=True, help="Run the probes (overfit one batch, label-shuffle control, zeroed-input "
              "baseline, lr range test) even when the warnings decide; they also run when they are ambiguous.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the verdict, culprit, evidence and deciding probe as JSON.")
@tracking_uri_option
@guarded
def diagnose(run_id, probe, as_json, tracking_uri):
    """Explain a run: its curves, its step-0 checks, the warnings raised and when, and the verdict
    (data, model or loss/optimizer) with the evidence, a confidence and what decided it. When the
    warnings cannot tell the parts apart, short probes on the run's own config and data decide;
    they are logged to the run (diagnostics.json, probes.png)."""
    from trainlib.diagnose.doctor import examine
    from trainlib.diagnose.report import render

    echo = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    client = open_client(tracking_uri)
    exam = examine(client, find_run(client, run_id).info.run_id, probe=probe, echo=echo)
    if as_json:
        click.echo(json.dumps(exam.to_json(), indent=1, allow_nan=False))
    else:
        click.echo(("\n" if exam.probes else "") + render(exam.report, exam.verdict, exam.probes))
