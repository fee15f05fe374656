"""The sweep folder: creating it, finding the latest one to resume, and its saved state.

A sweep lives in `<output.dir>/sweeps/<name>-<time>/`: sweep.yaml (the file as given),
sweep.json (the resolved sweep and its MLflow parent run, what --resume reads), tune/
(Tune's experiment: trial checkpoints and state), trials/ (each trial's run folder with
its TensorBoard logs), ddp/ (DDP trials' Ray Train runs), and the summary (trials.csv/json,
comparison.png, best_config.yaml).
"""
from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

from launcher.sweep.loading import Sweep
from launcher.sweep.tracking import SweepRun
from trainlib.config import resolve
from trainlib.errors import ConfigError
from trainlib.output_location import child, is_remote, local_root

STAMP = "%Y%m%d-%H%M%S"


def label_of(sweep: Sweep) -> str:
    return f"{sweep.name}-smoke" if sweep.smoke else sweep.name


def sweeps_root(sweep: Sweep) -> Path:
    return local_root(sweep.base["output"]["dir"]) / "sweeps"


@dataclass(frozen=True)
class Workspace:
    """`dir`: the sweep folder on this machine; `storage`: where Tune and Ray Train keep the sweep's
    checkpoints and state: the same folder, or its twin under a remote output dir (s3://...)."""

    dir: Path
    storage: str

    @classmethod
    def of(cls, sweep: Sweep, folder: Path) -> "Workspace":
        output = sweep.base["output"]["dir"]
        return cls(folder, child(output, "sweeps", folder.name) if is_remote(output) else str(folder))

    @property
    def tune_dir(self) -> str:
        return child(self.storage, "tune")

    @property
    def state_file(self) -> Path:
        return self.dir / "sweep.json"

    def save(self, sweep: Sweep, record: SweepRun) -> None:
        state = {"sweep": sweep.to_json(), "record": vars(record)}
        self.state_file.write_text(json.dumps(state, indent=1))

    def load(self) -> tuple[Sweep, SweepRun]:
        state = json.loads(self.state_file.read_text())
        return Sweep.from_json(state["sweep"]), SweepRun(**state["record"])


def new_workspace(sweep: Sweep) -> tuple[Workspace, Sweep]:
    """A fresh sweep folder; the trials' paths become absolute (they run in other folders and nodes)."""
    from trainlib.tracking.mlflow_tracker import resolve_tracking_uri

    root = sweeps_root(sweep)
    stamp = time.strftime(STAMP)
    folder = root / f"{label_of(sweep)}-{stamp}"
    n = 1
    while folder.exists():
        n += 1
        folder = root / f"{label_of(sweep)}-{stamp}-{n}"
    folder.mkdir(parents=True)
    shutil.copyfile(sweep.source, folder / "sweep.yaml")
    workspace = Workspace.of(sweep, folder)
    absolute = {"output": {"dir": child(workspace.storage, "trials")},
                "tracking": {"uri": resolve_tracking_uri(sweep.base["tracking"]["uri"])}}
    return workspace, replace(sweep, base=resolve([sweep.base, absolute]).to_dict())


def latest_workspace(sweep: Sweep) -> Workspace:
    root = sweeps_root(sweep)
    pattern = re.compile(re.escape(label_of(sweep)) + r"-\d{8}-\d{6}(-\d+)?$")
    found = sorted(p for p in root.glob(f"{label_of(sweep)}-*")
                   if pattern.match(p.name) and (p / "sweep.json").is_file()) if root.is_dir() else []
    if not found:
        raise ConfigError(f"no sweep '{label_of(sweep)}' to resume under {root}; start it without --resume")
    return Workspace.of(sweep, found[-1])
