"""`launch compare RUN_A RUN_B ...`: the params that differ and the metrics, side by side."""
from __future__ import annotations

import json
from typing import Any

import click

from launcher.guard import guarded
from launcher.tracking_reads import INCIDENTAL_PARAMS, tracking_uri_option
from launcher.table import render


@click.command("compare")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN_A RUN_B [RUN ...]")
@click.option("--all", "show_all", is_flag=True, help="Show every param, equal ones and output/tracking ones too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@tracking_uri_option
@guarded
def compare(run_ids, show_all, as_json, tracking_uri):
    """Compare runs: the params that differ, the metrics side by side.

    Runs are full ids or unique prefixes (at least 4 characters), as `launch runs` shows them.
    """
    from launcher import tracking_reads
    from trainlib.errors import ConfigError

    if len(run_ids) < 2:
        raise ConfigError("compare needs at least two runs, e.g. launch compare 1a2b3c4d 5e6f7a8b")
    client = tracking_reads.open_client(tracking_uri)
    found = [tracking_reads.find_run(client, ref) for ref in run_ids]
    params = side_by_side([r.data.params for r in found], only_different=not show_all)
    if not show_all:
        params = {k: row for k, row in params.items() if not k.startswith(INCIDENTAL_PARAMS)}
    metrics = side_by_side([r.data.metrics for r in found], only_different=False)
    if as_json:
        runs = [{"run_id": r.info.run_id, "run_name": r.info.run_name, "status": r.info.status} for r in found]
        click.echo(json.dumps({"runs": runs, "params": params, "metrics": metrics}, indent=2))
        return
    columns = [f"{r.info.run_id[:8]} {r.info.run_name}" for r in found]
    click.echo(render(["param", *columns], [[k, *v] for k, v in params.items()]) if params
               else "params: all equal (--all shows them)")
    click.echo()
    click.echo(render(["metric", *columns], [[k, *v] for k, v in metrics.items()]))


def side_by_side(values: list[dict[str, Any]], only_different: bool) -> dict[str, list[Any]]:
    """key -> one value per run (None where a run lacks it), keys sorted."""
    keys = sorted(set().union(*values))
    table = {k: [v.get(k) for v in values] for k in keys}
    if only_different:
        table = {k: row for k, row in table.items() if len(set(row)) > 1}
    return table
