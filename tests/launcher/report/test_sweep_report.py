"""A sweep's report as its driver writes it: from the rows and pictures its summary already holds."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from launcher.report.sweep_report import build_sweep_report, objective_of
from launcher.sweep.pictures import Objective
from launcher.sweep.workspace import Workspace
from trainlib import tags as tag


@pytest.mark.slow
def test_the_sweeps_own_report_reuses_its_summary_and_is_the_page_built_from_the_store(demo_store):
    """`launch sweep` builds its report from the summary's rows and comparison/parameters pictures instead
    of reading and drawing them again (issue 26): the page must be the one `launch report` builds from the
    store alone, byte for byte (the same pictures, the same table)."""
    client = MlflowClient(demo_store.uri)
    parent = client.get_run(demo_store.parent_run_id)
    sweep_dir = Path(parent.data.tags[tag.SWEEP_DIR])
    swept, _ = Workspace(sweep_dir, str(sweep_dir)).load()
    objective = objective_of(parent)
    assert list(Objective.of(swept).kinds.items()) == list(objective.kinds.items())  # so the summary's are used
    _, from_store = build_sweep_report(client, demo_store.uri, parent)
    assert (sweep_dir / "report.html").read_text() == from_store
