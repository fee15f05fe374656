"""What a sweep prints: the dry-run plan, the live trial table and the final summary."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from launcher.sweep import space as sp
from launcher.sweep.loading import Sweep
from launcher.sweep.schedulers import describe_scheduler
from launcher.table import render

def short(value: Any, width: int | None = 40) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text if width is None or len(text) <= width else text[:width - 3] + "..."


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], width: int | None = 40) -> str:
    """launcher.table's columns; cells longer than `width` are cut."""
    return render(headers, list(rows), fmt=lambda value: "" if value is None else short(value, width))


def plan(sweep: Sweep, checked: int, total_combos: int) -> list[str]:
    spec, res = sweep.file, sweep.file.resources
    per_trial = f"{res.cpu:g} CPU" + (f", {res.gpu:g} GPU" if res.gpu else "") + (
        f" on each of {res.workers} DDP workers" if res.workers > 1 else "")
    cpus = os.cpu_count() or 1
    at_once = int(cpus // (res.cpu * res.workers))
    if spec.tune.max_concurrent_trials:
        at_once = min(at_once, spec.tune.max_concurrent_trials)
    lines = [
        f"sweep {sweep.name}{' (smoke)' if sweep.smoke else ''}: {sp.trial_count(spec)} trials, "
        f"{spec.tune.search} search, scheduler {describe_scheduler(sweep)}",
        f"objective: {sweep.metric} ({sweep.mode}), {sweep.epochs} epochs of {sweep.base['model']['name']} "
        f"on {sweep.base['data']['name']}",
        *([f"finetuning: {sweep.base['finetune']['source']}"] if sweep.base["finetune"]["source"] else []),
        f"per trial: {per_trial}; on this machine ({cpus} CPUs) about {max(at_once, 1)} at once; "
        f"retries: {spec.failure.max_failures}",
        "space:",
        table(["key", "distribution"], [(k, d.describe()) for k, d in spec.space.items()], width=None),
    ]
    combos = "every combination of choices" if checked == total_combos else f"{checked} of {total_combos} combinations"
    lines.append(f"checked: {combos} resolves to a valid train config")
    return lines


def trial_table(trials: Sequence[Any], sweep: Sweep) -> str:
    """The live table, from Tune's trial objects."""
    keys = list(sweep.file.space)
    rows = []
    for t in trials:
        result = t.last_result or {}
        active = sweep.active(t.config)
        rows.append([str(t), t.status,
                     result.get("epoch", ""), result.get(sweep.metric, ""), *[active.get(k, "-") for k in keys]])
    return table(["trial", "status", "epoch", sweep.metric, *keys], rows)


def summary(sweep: Sweep, rows: list, best, record, sweep_dir: Path, storage: str | None = None,
            top: int = 5) -> list[str]:
    """The end of a sweep on the console; `storage`: where Tune keeps the sweep when not in `sweep_dir`
    (a remote output dir: s3://...)."""
    from launcher.sweep.tracking import RANKING, ranked

    keys = list(sweep.file.space)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    lines = [f"sweep {sweep.name}: {len(rows)} trials in MLflow (" +
             ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) + ")"]
    order = ranked(rows, sweep.mode)[:top]
    if order:
        lines.append(f"top {len(order)} by {sweep.metric} ({sweep.mode}; {RANKING}):")
        lines.append(table(["trial", "status", f"best {sweep.metric}", "test/acc", "epochs", *keys, "run id"],
                           [[r.trial, r.status, r.best, r.test_acc, r.epochs, *[r.params.get(k, "-") for k in keys],
                             r.run_id] for r in order]))
    if best is not None:
        lines.append(f"best trial:      {best.trial}  {sweep.metric} {best.best:.4f} (best epoch; last "
                     f"{best.last:.4f})  config: {sweep_dir / 'best_config.yaml'}")
    from trainlib.tracking.mlflow_tracker import ui_hint

    uri = record.uri
    trials = f"{storage.rstrip('/')}/trials" if storage else sweep_dir / "trials"
    lines += [
        f"parent run:      {record.parent_run_id}  (experiment {record.experiment_id})",
        *folder_lines(sweep_dir, storage),
        f"all trials:      launch runs --sweep {record.parent_run_id} --tracking-uri {uri}",
        f"MLflow UI:       {ui_hint(uri)}   (expand the parent run to see its trials)",
        f"TensorBoard:     launch ui --tensorboard --logdir {trials}   (HParams: trials compared)",
    ]
    return lines


def folder_lines(sweep_dir: Path, storage: str | None) -> list[str]:
    """Where the sweep is: one folder, or (remote output) its storage and this machine's summary files."""
    if storage is None or storage == str(sweep_dir):
        return [f"sweep folder:    {sweep_dir}  (trials.csv, comparison.png)"]
    return [f"sweep folder:    {storage}  (Tune state, checkpoints, trials/)",
            f"summary files:   {sweep_dir}  (this machine's scratch: trials.csv, comparison.png; "
            "also artifacts of the parent run)"]
