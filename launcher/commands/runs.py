"""`launch runs`: list tracked runs (all, one experiment's, or one sweep's trials)."""
from __future__ import annotations

import json
import time
from typing import Any

import click

from launcher.guard import guarded
from launcher.tracking_reads import INCIDENTAL_PARAMS, tracking_uri_option
from launcher.table import duration, render
from trainlib import tags as tag

KEY_PARAMS = ("model.name", "optimizer.name", "optimizer.lr", "scheduler.name", "epochs")
KEY_METRICS = ("valid/best_acc", "test/acc")
MAX_PARAM_COLUMNS = 8


@click.command("runs")
@click.option("--experiment", "-e", help="Only this MLflow experiment (default: all).")
@click.option("--sweep", help="Only the trials of this sweep: its name (the newest sweep so named) or its parent run id.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Newest runs to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (all params and metrics) instead of a table.")
@tracking_uri_option
@guarded
def runs(experiment, sweep, limit, as_json, tracking_uri):
    """List runs: id, name, status, key params, best metrics, duration."""
    from launcher import tracking_reads

    client = tracking_reads.open_client(tracking_uri)
    exp_ids = tracking_reads.experiment_ids(client, experiment)
    if sweep:
        parent = tracking_reads.sweep_parent(client, exp_ids, sweep)
        found = tracking_reads.children(client, exp_ids, parent.info.run_id)
        ran = {r.info.run_id: epochs_ran(client, r.info.run_id) for r in found}
        if not as_json:
            smoke = " (a --smoke sweep: no other sweep has this name)" if tracking_reads.is_smoke(parent) else ""
            click.echo(f"sweep {sweep}: parent run {parent.info.run_id} ({parent.info.run_name}), "
                       f"{len(found)} trials{smoke}")
    else:
        found = tracking_reads.search(client, exp_ids, limit=limit + 1)
        ran = {}
    shown = found[:limit]
    if as_json:
        click.echo(json.dumps([run_record(r, exp_ids, ran.get(r.info.run_id)) for r in shown], indent=2))
    elif not shown:
        click.echo("no trials in this sweep yet" if sweep else "no runs yet; start one with: launch train")
    else:
        click.echo(runs_table(shown, exp_ids, ran))
        if len(found) > limit:
            click.echo(f"(the {limit} newest; --limit N shows more)")


def epochs_ran(client: Any, run_id: str) -> int:
    """Epochs a run trained (a trial its scheduler stopped ran fewer than its config's `epochs`)."""
    return len({m.step for m in client.get_metric_history(run_id, "train/loss")})


def runs_table(found: list[Any], exp_ids: dict[str, str], ran: dict[str, int] | None = None) -> str:
    """`ran`: run id -> epochs trained; the epochs column then shows RAN/CONFIGURED where they differ."""
    params = param_columns(found)
    many_experiments = len({r.info.experiment_id for r in found}) > 1
    header = ["id", "name", "status", *(["experiment"] if many_experiments else []), *params, *KEY_METRICS,
              "duration"]
    rows = []
    for r in found:
        experiment = [exp_ids.get(r.info.experiment_id)] if many_experiments else []
        values = {p: r.data.params.get(p) for p in params}
        if ran and r.info.run_id in ran and "epochs" in values and str(ran[r.info.run_id]) != values["epochs"]:
            values["epochs"] = f"{ran[r.info.run_id]}/{values['epochs']}"
        rows.append([r.info.run_id[:8], r.info.run_name, r.info.status, *experiment,
                     *values.values(), *(r.data.metrics.get(m) for m in KEY_METRICS),
                     duration(run_seconds(r))])
    return render(header, rows)


def param_columns(found: list[Any]) -> list[str]:
    """The usual key params, then the ones that vary between these runs (a sweep's search space)."""
    present = set().union(*(r.data.params for r in found))
    varying = sorted(k for k in present - set(KEY_PARAMS) if not k.startswith(INCIDENTAL_PARAMS)
                     and len({r.data.params[k] for r in found if k in r.data.params}) > 1)
    return [k for k in KEY_PARAMS if k in present] + varying[:MAX_PARAM_COLUMNS - len(KEY_PARAMS)]


def run_seconds(r: Any) -> float | None:
    if not r.info.start_time:
        return None
    end = r.info.end_time or (time.time() * 1000 if r.info.status == "RUNNING" else None)
    return (end - r.info.start_time) / 1000 if end else None


def run_record(r: Any, exp_ids: dict[str, str], epochs_ran: int | None = None) -> dict[str, Any]:
    return {
        "run_id": r.info.run_id,
        "run_name": r.info.run_name,
        "experiment": exp_ids.get(r.info.experiment_id),
        "status": r.info.status,
        "start_time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(r.info.start_time / 1000)),
        "duration_s": run_seconds(r),
        "parent_run_id": r.data.tags.get(tag.PARENT),
        **({"epochs_ran": epochs_ran} if epochs_ran is not None else {}),
        "params": r.data.params,
        "metrics": r.data.metrics,
    }
