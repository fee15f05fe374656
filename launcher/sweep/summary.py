"""The sweep's summary, written when its trials end (or stop): trials.csv/json, the comparison
pictures, TensorBoard HParams and the best trial's config, in the sweep folder and on the parent run.
It is built from the trials read back from MLflow (`tracking.collect_rows`).
"""
from __future__ import annotations

import csv
import json
import shutil
from dataclasses import asdict
from pathlib import Path

from launcher.sweep.loading import Sweep
from launcher.sweep.pictures import Objective, plot_comparison, plot_parameters
from launcher.sweep.tracking import SweepRun, TrialRow, ranked
from trainlib import tags as tag


def write_summary(record: SweepRun, sweep: Sweep, sweep_dir: Path, rows: list[TrialRow],
                  status: str) -> TrialRow | None:
    """Trials table, comparison plot, TensorBoard hparams and the best trial, logged on the parent."""
    keys = list(sweep.file.space)
    table = sweep_dir / "trials.csv"
    with table.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0].flat(keys)) if rows else ["trial"])
        writer.writeheader()
        writer.writerows(r.flat(keys) for r in rows)
    (sweep_dir / "trials.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    plot_comparison(rows, Objective.of(sweep), sweep_dir / "comparison.png")
    plot_parameters(rows, Objective.of(sweep), sweep_dir / "parameters.png")
    write_hparams(rows, sweep)
    client = record.client
    for name in ("trials.csv", "trials.json", "comparison.png", "parameters.png"):
        client.log_artifact(record.parent_run_id, str(sweep_dir / name))
    best = next(iter(ranked(rows, sweep.mode)), None)
    if best is not None:
        config_path = sweep_dir / "best_config.yaml"
        config_path.write_text(sweep.trial_config(best.params).to_yaml())
        client.log_artifact(record.parent_run_id, str(config_path))
        client.log_metric(record.parent_run_id, f"best/{sweep.metric}", best.best)
        client.set_tag(record.parent_run_id, tag.BEST_TRIAL, best.trial)
        client.set_tag(record.parent_run_id, tag.BEST_RUN_ID, best.run_id)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    client.set_tag(record.parent_run_id, tag.TRIALS, json.dumps(counts, sort_keys=True))
    record.set_status(status)
    return best


def write_hparams(rows: list[TrialRow], sweep: Sweep) -> None:
    """TensorBoard HParams: one session per trial in <run dir>/tb/hparams (rewritten on resume)."""
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams

    for r in rows:
        if not r.run_dir:
            continue
        metrics = {f"hparam/{sweep.metric}": r.best}
        if r.test_acc is not None:
            metrics["hparam/test/acc"] = r.test_acc
        metrics = {k: float(v) for k, v in metrics.items() if v is not None}
        if not metrics:
            continue
        values = {k: (v if isinstance(v, (bool, int, float, str)) else json.dumps(v)) for k, v in r.params.items()}
        logdir = Path(r.run_dir) / "tb" / "hparams"
        shutil.rmtree(logdir, ignore_errors=True)
        _, session_start, session_end = hparams(values, metrics)
        with SummaryWriter(str(logdir)) as writer:
            writer.file_writer.add_summary(session_start)
            writer.file_writer.add_summary(session_end)
            for key, value in metrics.items():
                writer.add_scalar(key, value, r.epochs)
