"""Findings: each warning once, with when it happened; told to the user, MLflow and TensorBoard.

A finding is reported when first seen (a printed line, the MLflow tag
`launch.warning.<check>`, a TensorBoard text entry under `diagnose/<check>`); later
sightings only update its last epoch and count. All findings are kept as structured data in
the run artifact `diagnostics.json`, which `launch diagnose` reads back.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from trainlib import tags as tag
from trainlib.live_checks.catalog import CHECKS
from trainlib.errors import RunStopped
from trainlib.tracking import Tracker

ARTIFACT = "diagnostics.json"


@dataclass
class Finding:
    check: str
    epoch: int
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    batch: int | None = None
    last_epoch: int = 0
    count: int = 1

    @property
    def culprit(self) -> str:
        return CHECKS[self.check].culprit

    def line(self) -> str:
        where = f"epoch {self.epoch}" if self.epoch else "before training"
        where += f" batch {self.batch}" if self.batch is not None else ""
        return f"{where}: {self.message}"


class Recorder:
    def __init__(self, tracker: Tracker, run_dir: Path, echo: Callable[[str], None], stop_on: list[str]):
        self.tracker = tracker
        self.path = run_dir / ARTIFACT
        self.echo = echo
        self.stop_on = set(stop_on)
        self.findings: dict[str, Finding] = {}
        self.extra: dict[str, Any] = {}  # other sections of diagnostics.json (e.g. "step0")

    def report(self, check: str, epoch: int, message: str, evidence: dict[str, Any] | None = None,
               batch: int | None = None) -> None:
        seen = self.findings.get(check)
        if seen is not None:
            if epoch > seen.last_epoch:
                seen.last_epoch, seen.count = epoch, seen.count + 1
            return
        finding = Finding(check, epoch, message, evidence or {}, batch, last_epoch=epoch)
        self.findings[check] = finding
        self._announce(finding)
        if check in self.stop_on:
            self._stop(finding)

    def _announce(self, finding: Finding) -> None:
        self.echo(f"warning [{finding.check}] {finding.line()}")
        self.tracker.set_tags({tag.WARNING_PREFIX + finding.check: finding.line()[:5000]})
        writer = self.tracker.summary_writer()
        if writer is not None:
            advice = CHECKS[finding.check].advice
            writer.add_text(f"diagnose/{finding.check}", f"{finding.line()}  \nwhat to try: {advice}", finding.epoch)
        self.save()

    def _stop(self, finding: Finding) -> None:
        reason = f"{CHECKS[finding.check].title} at {finding.line()} (diagnose.stop_on: {finding.check})"
        self.tracker.set_tags({tag.STOP_REASON: reason[:5000]})
        raise RunStopped(reason)

    def save(self) -> None:
        """Write and log diagnostics.json (also when nothing was found: the doctor reads it)."""
        data = {"findings": [asdict(f) for f in self.findings.values()], **self.extra}
        self.path.write_text(json.dumps(data, indent=1))
        self.tracker.log_artifact(self.path)


def findings_of(data: dict[str, Any]) -> list[Finding]:
    return [Finding(**item) for item in data.get("findings", [])]
