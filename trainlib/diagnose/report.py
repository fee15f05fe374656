"""The doctor: a report on a finished run from what MLflow holds (metrics, tags, diagnostics.json)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from trainlib import tags as tag
from trainlib.live_checks.catalog import CHECKS
from trainlib.live_checks.findings import ARTIFACT, Finding, findings_of
from trainlib.errors import UserError

CURVES = ("train/loss", "valid/loss", "train/acc", "valid/acc", "lr")
FLAT = 0.02  # relative change over the last epochs below which a curve counts as flat


def fmt(name: str, value: float) -> str:
    return f"{value:.2%}" if name.endswith("/acc") else f"{value:.4g}"


@dataclass
class Curve:
    name: str
    values: list[float]  # by epoch, from 1

    @property
    def best_epoch(self) -> int:
        finite = [(v, i) for i, v in enumerate(self.values, 1) if math.isfinite(v)]
        if not finite:
            return 0
        pick = min if self.name.endswith("loss") else max
        return pick(finite)[1]

    def trend(self, window: int = 3) -> str:
        tail = self.values[-window - 1:]
        if len(tail) < 2 or not all(math.isfinite(v) for v in tail):
            return "not finite" if not all(math.isfinite(v) for v in tail) else "-"
        change = (tail[-1] - tail[0]) / max(abs(tail[0]), 1e-12)
        return "flat" if abs(change) < FLAT else ("rising" if change > 0 else "falling")

    def line(self) -> str:
        text = f"{self.name:<11} {fmt(self.name, self.values[0])} -> {fmt(self.name, self.values[-1])}"
        if self.name != "lr":
            best = self.best_epoch
            text += f"   best {fmt(self.name, self.values[best - 1])} @ epoch {best}" if best else "   no finite value"
        return f"{text}   last epochs: {self.trend()}"


@dataclass
class Report:
    run_id: str
    run_name: str
    status: str
    model: str
    dataset: str
    epochs_done: int
    epochs_planned: str
    stop_reason: str | None
    error: str | None
    curves: list[Curve]
    final: dict[str, float]
    diagnostics: dict  # the run's diagnostics.json ({} when it has none)
    findings: list[Finding] | None = field(init=False)  # None: the run recorded no diagnostics
    culprit: str | None = field(init=False)

    def __post_init__(self) -> None:
        self.findings = findings_of(self.diagnostics) if self.diagnostics else None
        ranked = sorted(self.findings or [], key=lambda f: CHECKS[f.check].rank)
        self.culprit = ranked[0].culprit if ranked else None


def load_report(client, run_id: str) -> Report:
    """`client`: an MlflowClient on the run's store."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise UserError(f"unknown run '{run_id}' in {client.tracking_uri}; list runs with: launch runs") from None
    tags, params = run.data.tags, run.data.params
    curves = [Curve(name, _history(client, run_id, name)) for name in CURVES]
    curves = [c for c in curves if c.values]
    final = {k: v for k, v in run.data.metrics.items() if k.startswith("test/")}
    return Report(run_id, run.info.run_name, run.info.status, params.get("model.name", "?"),
                  params.get("data.name", "?"), len(curves[0].values) if curves else 0, params.get("epochs", "?"),
                  tags.get(tag.STOP_REASON), tags.get(tag.ERROR), curves, final, _diagnostics(client, run))


def _history(client, run_id: str, key: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def _diagnostics(client, run) -> dict:
    from trainlib.tracking.artifact_reads import artifact_text

    text = artifact_text(client.tracking_uri, run, ARTIFACT)
    return json.loads(text) if text is not None else {}


def render(report: Report, verdict, probes=None) -> str:
    """`verdict`: trainlib.diagnose.verdict.Verdict; `probes`: the probes' results when they ran."""
    r = report
    lines = [f"run {r.run_id} ({r.run_name}): {r.model} on {r.dataset}, {r.status}, "
             f"{r.epochs_done}/{r.epochs_planned} epochs"]
    if r.stop_reason:
        lines.append(f"stopped: {r.stop_reason}")
    elif r.error:
        lines.append(f"error: {r.error}")
    lines += ["", "curves:"] + [f"  {c.line()}" for c in r.curves] + ([] if r.curves else ["  (no epoch completed)"])
    acc = {c.name: c.values[-1] for c in r.curves if c.name.endswith("/acc")}
    if len(acc) == 2:
        lines.append(f"  train/valid accuracy gap at the end: {acc['train/acc'] - acc['valid/acc']:+.1%}")
    lines += [f"  {k:<11} {fmt(k, v)}" for k, v in sorted(r.final.items())]
    lines += _step0(r.diagnostics.get("step0"))
    if probes:
        lines += ["", "probes:"] + [f"  {p.name} ({p.seconds:.1f}s) {p.outcome}: {p.message}" for p in probes]
    lines += ["", *_diagnosis(r, verdict)]
    return "\n".join(lines)


def _step0(step0: dict | None) -> list[str]:
    if not step0:
        return []
    expected = step0["expected_loss"]
    against = (f"expected {expected:.4g}: {step0['expected_how']}" if expected is not None
               else f"no expectation: {step0['expected_how']}")
    inputs = step0["inputs"]
    return ["", "step 0 (first batch, before the first optimizer step):",
            f"  initial loss {step0['initial_loss']:.4g} ({against})",
            f"  inputs {inputs['shape']}: mean {inputs['mean']}, std {inputs['std']}, "
            f"range {inputs['min']:.3g}..{inputs['max']:.3g}",
            f"  largest layer output std {max(step0['output_std'].values(), default=0):.3g}",
            f"  labels of the first batch {step0['batch_labels']}; of the train split {step0['train_labels']}"]


def _diagnosis(r: Report, verdict) -> list[str]:
    if r.findings is None and verdict.deciding_probe is None:
        return ["diagnosis: none recorded for this run (diagnose.enabled was off or it stopped before training)"]
    ranked = sorted(r.findings or [], key=lambda f: CHECKS[f.check].rank)
    lines = ["warnings: none"] if not ranked else ["warnings (first seen; root causes first):"]
    for f in ranked:
        seen = f" (seen in {f.count} epochs, last {f.last_epoch})" if f.count > 1 else ""
        lines.append(f"  [{f.culprit}] {CHECKS[f.check].title} - {f.line()}{seen}")
    if verdict.culprit is None:
        return lines + [f"likely culprit: none - {verdict.summary} (confidence {verdict.confidence:.0%})"]
    decided = f"probe {verdict.deciding_probe}" if verdict.deciding_probe else f"check {verdict.deciding_check}"
    lines += ["", f"likely culprit: {verdict.culprit}",
              f"verdict: {verdict.summary} (confidence {verdict.confidence:.0%}; decided by {decided})"]
    if verdict.ambiguous:
        lines.append(f"  (the warnings alone were ambiguous: {verdict.ambiguous})")
    lines += ["evidence:", *[f"  - {e}" for e in verdict.evidence]]
    others = [CHECKS[f.check].title for f in ranked if f.culprit != verdict.culprit]
    if others:
        lines.append(f"  (the other warnings - {', '.join(others)} - may follow from it)")
    return lines + [f"what to try: {verdict.advice}"]
