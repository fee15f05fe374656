"""`launch sweep FILE`: a Ray Tune sweep of trainlib runs, tracked as MLflow parent/child runs."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from launcher.config_args import cli_layers, flag_values, shared_storage_option
from launcher.guard import INTERRUPTED_EXIT, guarded


@click.command("sweep")
@click.argument("sweep_file", type=click.Path(dir_okay=False))
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a key of the base train config, e.g. -s batch_size=128 (repeatable).")
@click.option("--epochs", type=int, help="Epochs per trial (base config).")
@click.option("-n", "--num-samples", type=click.IntRange(min=1),
              help="Samples from the space (tune.num_samples; at least 1).")
@click.option("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db).")
@click.option("--experiment", help="MLflow experiment name.")
@click.option("--output-dir", help="Root folder; the sweep goes to <output-dir>/sweeps/<name>-<time> (default: runs).")
@shared_storage_option
@click.option("--dry-run", is_flag=True,
              help="Validate; print the trials and the space, check every choice; run nothing.")
@click.option("--smoke", is_flag=True, help="A few short trials of this sweep (the file's `smoke` section).")
@click.option("--resume", is_flag=True, help="Continue the latest interrupted sweep of this name.")
@click.option("--retry-errored", is_flag=True, help="With --resume: also retry trials that had failed.")
@click.option("--address", metavar="ADDR", help="Join this Ray cluster (default: $RAY_ADDRESS, else a local Ray).")
@click.option("-v", "--verbose", is_flag=True, help="Show the trials' own output and Ray's log messages.")
@guarded
def sweep(sweep_file, overrides, num_samples, dry_run, smoke, resume, retry_errored, address, verbose, **flags):
    """Run a Ray Tune sweep described by SWEEP_FILE (see search_spaces/)."""
    from launcher.cluster.reachability import ClusterProbe, check_named_store

    probe = None
    if not dry_run:
        check_named_store(flags.get("tracking_uri"))
        probe = ClusterProbe.start(address)  # answers while the sweep loads
    from launcher.sweep.loading import load_sweep, with_samples


    swept = load_sweep(sweep_file, cli_layers(None, overrides, flag_values(flags)), smoke=smoke)
    if num_samples:
        swept = with_samples(swept, num_samples)
    if dry_run:
        print_plan(swept)
        return
    run_sweep(swept, resume=resume, retry_errored=retry_errored, address=address, verbose=verbose, probe=probe)


def print_plan(swept) -> None:
    from launcher.sweep.console import plan
    from launcher.sweep.loading import COMBINATION_LIMIT
    from launcher.sweep.space import combinations

    combos, total = combinations(swept.file.space, COMBINATION_LIMIT)
    for line in plan(swept, len(combos), total):
        click.echo(line)


def ray_log_file(output_dir: str) -> Path | None:
    """Where Ray's notes about itself go off the console: `output.dir`/ray/console.log (local output only)."""
    from trainlib.output_location import is_remote

    return None if is_remote(output_dir) else Path(output_dir) / "ray" / "console.log"


def run_sweep(swept, *, resume: bool, retry_errored: bool, address: str | None, verbose: bool,
              trial_callbacks=(), probe=None) -> None:
    from launcher.cluster import reachability
    from launcher.sweep import cluster
    from launcher.sweep.console import summary
    from launcher.sweep.state_digest import check_state
    from launcher.sweep.summary import write_summary
    from launcher.sweep.tracking import client_for, collect_rows, open_parent
    from launcher.sweep.workspace import label_of, latest_workspace, new_workspace
    from trainlib.heap import collection_paused, startup_done

    if resume:
        workspace = latest_workspace(swept)
        swept, record = workspace.load()
    storage = preflight_args(swept.base)
    if probe is None:
        probe = reachability.ClusterProbe.start(address)
    reachability.before_start(**storage, probe=probe, what="the sweep")
    client_for(swept.base["tracking"]["uri"])  # a store that cannot be used is refused before Ray starts
    if resume:  # before anything unpickles the sweep folder's Tune state
        for line in check_state(record, workspace.dir, workspace.tune_dir):
            click.echo(line)
    # a DDP sweep resumed from a Tune state saved before the driver freed placement groups keeps
    # Ray Train's cleaner, which asks the dashboard (launcher.cluster.placement_groups)
    started = cluster.connect(address, verbose, dashboard=resume and swept.file.resources.workers > 1,
                              log_file=ray_log_file(swept.base["output"]["dir"]))
    try:
        reachability.after_connect(**storage, what="the sweep")
        resources = cluster.fit_resources(swept.file.resources, click.echo)  # before anything is written
        if resume:
            record.set_status("RUNNING")
            click.echo(f"resuming {workspace.dir} as it was started (later edits and options do not apply)")
        else:
            workspace, swept = new_workspace(swept)
            record = open_parent(swept, label_of(swept), workspace.dir)
            workspace.save(swept, record)
        click.echo(f"sweep folder: {workspace.storage}\nMLflow parent run: {record.parent_run_id}")
        startup_done()  # the collector is back for Tune's loop (trainlib.heap)
        outcome = run_trials(swept, workspace, record, resources, resume=resume, retry_errored=retry_errored,
                             trial_callbacks=trial_callbacks)
    finally:
        if started:
            import ray

            ray.shutdown()
    with collection_paused():  # a few seconds that leave no garbage cycles: no full pass over the driver's heap
        rows = collect_rows(record, swept.metric, swept.mode)
        best = write_summary(record, swept, workspace.dir, rows, "KILLED" if outcome.unfinished else "FINISHED")
        for line in summary(swept, rows, best, record, workspace.dir, workspace.storage):
            click.echo(line)
        write_sweep_report(record, workspace.dir, swept, rows)
    if outcome.unfinished:
        click.echo(f"interrupted with {outcome.unfinished} trials unfinished; continue with: "
                   f"launch sweep {swept.source} --resume{' --smoke' if swept.smoke else ''}", err=True)
        sys.exit(INTERRUPTED_EXIT)


def write_sweep_report(record, sweep_dir: Path, swept, rows) -> None:
    """The sweep's HTML report (launch report), in its folder and on its parent run, from the rows and
    pictures its summary just wrote there; a sweep whose report cannot be built has still run: that is a warning."""
    from launcher.report import write_report
    from launcher.report.sweep_report import Drawn
    from launcher.sweep.pictures import Objective

    client = record.client
    path = sweep_dir / "report.html"
    try:
        drawn = Drawn.from_summary(Objective.of(swept), rows, sweep_dir)
        written = write_report(client, record.uri, client.get_run(record.parent_run_id), path, drawn)
    except Exception as exc:  # noqa: BLE001 - the trials are recorded whatever happens here
        click.echo(f"warning: no report ({type(exc).__name__}: {exc}); try: launch report {record.parent_run_id}",
                   err=True)
        return
    click.echo(f"report:          {written}  (one HTML file: trials, curves, importance, best config)")


def preflight_args(base: dict) -> dict:
    return {"tracking_uri": base["tracking"]["uri"], "mlflow": base["tracking"]["mlflow"],
            "output_dir": base["output"]["dir"], "shared": base["output"]["shared"]}


def run_trials(swept, workspace, record, resources, *, resume: bool, retry_errored: bool, trial_callbacks):
    """The Tune run; the parent run ends KILLED/FAILED if it does not come back."""
    from launcher.sweep import tuner

    try:
        return tuner.execute(swept, workspace, record, resources, resume=resume, retry_errored=retry_errored,
                             echo=click.echo, trial_callbacks=trial_callbacks)
    except KeyboardInterrupt:
        record.set_status("KILLED")
        raise
    except BaseException:
        record.set_status("FAILED")
        raise
