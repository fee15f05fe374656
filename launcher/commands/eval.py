"""`launch eval`: evaluate a finished run's checkpoint (or any state dict) on a split."""
from __future__ import annotations

import click

from launcher.config_args import cli_layers
from launcher.guard import guarded


@click.command("eval")
@click.argument("source")
@click.option("--split", type=click.Choice(["valid", "test"]), default="test", show_default=True,
              help="Which split of the run's data to evaluate.")
@click.option("--data", "data_name", help="Dataset name instead of the run's own (data.name).")
@click.option("-s", "--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a key of the run's config, e.g. -s data.classes=[5,6] -s batch_size=256 (repeatable).")
@click.option("--device", help="auto, cpu, cuda, cuda:N, mps (default: the run's own).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Folder for the report, confusion matrix and eval.json (default: RUN_FOLDER/eval/SPLIT-CHECKPOINT).")
@click.option("--log", "log_mlflow", is_flag=True,
              help="Record eval/SPLIT/acc|loss and the files in MLflow: on the checkpoint's run, else on a new run.")
@click.option("--tracking-uri", help="MLflow tracking URI (to find RUN_ID and for --log).")
@guarded
def eval_(source, split, data_name, overrides, device, out_dir, log_mlflow, tracking_uri):
    """Evaluate SOURCE: RUN_ID[:best|last] (default best), a run folder, or a checkpoint / state-dict file.

    Prints the accuracy and the seed's per-class recall/precision table and writes the
    confusion matrix PNG. Uses the run's own config (data, transforms, model) unless overridden.
    """
    from pathlib import Path

    from launcher.cluster.reachability import check_named_store

    if not Path(source.removesuffix(":best").removesuffix(":last")).exists():  # a run id: ask the store now
        check_named_store(tracking_uri)
    from trainlib.evaluation import evaluate_source, log_evaluation

    layers = cli_layers(None, overrides, {"device": device})
    if data_name:
        layers.append({"data": data_name})
    ev, cfg = evaluate_source(source, layers, split, tracking_uri, out_dir)
    epoch = f", epoch {ev.epoch}" if ev.epoch is not None else ""
    click.echo(f"checkpoint:  {ev.checkpoint}{epoch}")
    click.echo(f"{split} acc {ev.acc:.2%}  loss {ev.loss:.4f}  ({ev.samples} images)")
    click.echo(ev.report)
    click.echo(f"written:     {ev.out_dir}/ ({', '.join(p.name for p in ev.files())})")
    if log_mlflow:
        run_id = log_evaluation(ev, cfg, tracking_uri)
        click.echo(f"MLflow:      run {run_id}: eval/{split}/acc, eval/{split}/loss and artifacts eval/")
