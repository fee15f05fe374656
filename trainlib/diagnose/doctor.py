"""`launch diagnose`: read a run back, run the probes when asked or when the verdict is ambiguous,
log them to the run (diagnostics.json entries `probes` and `verdict`, the figure probes.png),
and give the verdict."""
from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from trainlib.live_checks.findings import ARTIFACT
from trainlib.diagnose.probes import ProbeResult, plot, run_probes
from trainlib.diagnose.report import Report, load_report
from trainlib.diagnose.verdict import Verdict, ambiguity, decide
from trainlib.errors import UserError

FIGURE = "probes.png"


@dataclass
class Examination:
    report: Report
    verdict: Verdict
    probes: list[ProbeResult] | None

    def to_json(self) -> dict[str, Any]:
        r, v = self.report, self.verdict
        return strict_json({"run_id": r.run_id, "verdict": v.summary, "culprit": v.culprit, "confidence": v.confidence,
                "evidence": v.evidence, "deciding_probe": v.deciding_probe, "deciding_check": v.deciding_check,
                "ambiguous": v.ambiguous, "status": r.status,
                "findings": None if r.findings is None else [asdict(f) for f in r.findings],
                "probes": None if self.probes is None else [_probe_entry(p) for p in self.probes],
                "step0": r.diagnostics.get("step0")})


def strict_json(value: Any) -> Any:
    """NaN / Inf as the strings "nan" / "inf" / "-inf": strict JSON parsers (jq) refuse the bare tokens."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def _probe_entry(probe: ProbeResult) -> dict[str, Any]:
    return {"name": probe.name, "outcome": probe.outcome, "message": probe.message, "seconds": probe.seconds,
            "evidence": probe.evidence}


def examine(client, run_id: str, probe: bool = False, echo: Callable[[str], None] = lambda _: None) -> Examination:
    """`probe`: run the probes whatever the findings say (otherwise only when the verdict is ambiguous)."""
    report = load_report(client, run_id)
    why = ambiguity_of(report)
    probes = None
    if probe or why:
        if why:
            echo(f"ambiguous: {why}; running the probes")
        probes = run_probes(run_config(client, run_id), echo=echo)
    verdict = decide(report.findings, probes, why)
    if probes is not None:
        log_probes(client, report, probes, verdict)
    return Examination(report, verdict, probes)


def ambiguity_of(report: Report) -> str | None:
    acc = {c.name: c.values for c in report.curves}
    return ambiguity(report.findings, acc.get("train/acc", []), acc.get("valid/acc", []),
                     report.diagnostics.get("step0", {}).get("num_classes"))


def recorded_verdict(client, run_id: str) -> tuple[Report, Verdict]:
    """The verdict without running anything: the one `launch diagnose` logged with its probes, else the
    warnings' own reading (an ambiguous one says that the probes would decide)."""
    report = load_report(client, run_id)
    logged = report.diagnostics.get("verdict")
    if logged:
        return report, Verdict(**logged)
    return report, decide(report.findings, None, ambiguity_of(report))


def run_config(client, run_id: str):
    from trainlib.config import load_yaml, resolve

    if not any(a.path == "config.yaml" for a in client.list_artifacts(run_id)):
        raise UserError(f"run '{run_id}' has no config.yaml artifact: the probes need the run's config")
    with tempfile.TemporaryDirectory() as tmp:
        return resolve([load_yaml(client.download_artifacts(run_id, "config.yaml", tmp))])


def log_probes(client, report: Report, probes: list[ProbeResult], verdict: Verdict) -> None:
    """Add `probes` and `verdict` to the run's diagnostics.json and log the probes' figure."""
    data = {"findings": [], **report.diagnostics, "probes": [_probe_entry(p) for p in probes],
            "verdict": verdict.to_dict()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ARTIFACT
        path.write_text(json.dumps(data, indent=1))
        client.log_artifact(report.run_id, str(path))
        figure = plot(probes, Path(tmp) / FIGURE, f"probes on run {report.run_id[:8]} ({report.model} on "
                                                  f"{report.dataset}): {verdict.summary}")
        client.log_artifact(report.run_id, str(figure))
