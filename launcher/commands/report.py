"""`launch report SWEEP_OR_RUN`: one self-contained HTML page on a sweep or a run."""
from __future__ import annotations

from pathlib import Path

import click

from launcher.guard import guarded
from launcher.tracking_reads import tracking_uri_option


@click.command("report")
@click.argument("target", metavar="SWEEP_OR_RUN")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="The HTML file to write "
              "(default: report-<sweep or run name>.html in this folder).")
@tracking_uri_option
@guarded
def report(target, output, tracking_uri):
    """Write one HTML file (opens from disk: no server, no network) on a sweep (its name, its parent run's id or
    an id prefix) or one run, and log it to that run as report.html. A sweep's: the trials table (sortable, with
    the doctor's verdict of each), every trial's curve, the parameters' importance (fANOVA) and the metric against
    each, the best trial's config and the command that re-runs it. A run's: its curves, its pictures, the doctor's
    report, its config and the command."""
    from launcher import tracking_reads
    from launcher.report import write_report

    uri = tracking_reads.existing_store(tracking_uri)
    client = tracking_reads.open_client(uri)
    run = find_target(client, target)
    path = Path(output) if output else Path(f"report-{run.info.run_name or run.info.run_id[:8]}.html")
    click.echo(f"report: {write_report(client, uri, run, path).resolve()}")


def find_target(client, target: str):
    """A sweep's parent run (by the sweep's name, the parent's run name, id or id prefix), or the run `target`."""
    from launcher import tracking_reads
    from trainlib.errors import ConfigError

    try:
        return tracking_reads.sweep_parent(client, tracking_reads.experiment_ids(client, None), target)
    except ConfigError as exc:
        raise ConfigError(f"{exc}; or give a run's id (launch runs lists them)") from None
