"""The doctor: a report on a finished run from what MLflow holds (metrics, tags, diagnostics.json)."""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from trainlib import tags as tag
from trainlib.diagnose.catalog import CHECKS
from trainlib.diagnose.findings import ARTIFACT, Finding, load_findings
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
    findings: list[Finding] | None  # None: the run recorded no diagnostics
    culprit: str | None = field(init=False)

    def __post_init__(self) -> None:
        ranked = sorted(self.findings or [], key=lambda f: CHECKS[f.check].rank)
        self.culprit = ranked[0].culprit if ranked else None


def load_report(client, run_id: str) -> Report:
    """`client`: an MlflowClient on the run's store."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise UserError(f"no run '{run_id}' in {client.tracking_uri}") from None
    tags, params = run.data.tags, run.data.params
    curves = [Curve(name, _history(client, run_id, name)) for name in CURVES]
    curves = [c for c in curves if c.values]
    final = {k: v for k, v in run.data.metrics.items() if k.startswith("test/")}
    return Report(run_id, run.info.run_name, run.info.status, params.get("model.name", "?"),
                  params.get("data.name", "?"), len(curves[0].values) if curves else 0, params.get("epochs", "?"),
                  tags.get(tag.STOP_REASON), tags.get(tag.ERROR), curves, final, _findings(client, run_id))


def _history(client, run_id: str, key: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def _findings(client, run_id: str) -> list[Finding] | None:
    if not any(a.path == ARTIFACT for a in client.list_artifacts(run_id)):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return load_findings(Path(client.download_artifacts(run_id, ARTIFACT, tmp)))


def render(report: Report) -> str:
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
    lines += ["", *_diagnosis(r)]
    return "\n".join(lines)


def _diagnosis(r: Report) -> list[str]:
    if r.findings is None:
        return ["diagnosis: none recorded for this run (diagnose.enabled was off or it stopped before training)"]
    if not r.findings:
        return ["warnings: none", "likely culprit: none - no check found a problem with the data, the model "
                "or the loss/optimizer"]
    ranked = sorted(r.findings, key=lambda f: CHECKS[f.check].rank)
    lines = ["warnings (first seen; root causes first):"]
    for f in ranked:
        seen = f" (seen in {f.count} epochs, last {f.last_epoch})" if f.count > 1 else ""
        lines.append(f"  [{f.culprit}] {CHECKS[f.check].title} - {f.line()}{seen}")
    main = ranked[0]
    lines += ["", f"likely culprit: {r.culprit}", "evidence:"]
    lines += [f"  - {CHECKS[f.check].title}: {f.message}" for f in ranked if f.culprit == r.culprit]
    others = [CHECKS[f.check].title for f in ranked if f.culprit != r.culprit]
    if others:
        lines.append(f"  (the other warnings - {', '.join(others)} - may follow from it)")
    lines.append(f"what to try: {CHECKS[main.check].advice}")
    return lines
