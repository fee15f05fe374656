"""`launch compare` against a real store: two trials that differ in their optimizer."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from launcher.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def section(stdout: str, title: str) -> dict[str, list[str]]:
    """The table whose header starts with `title`: first cell -> the other cells."""
    for block in stdout.strip().split("\n\n"):
        header, _rule, *rows = block.splitlines()
        if header.split()[0] == title:
            return {row.split()[0]: row.split()[1:] for row in rows}
    raise AssertionError(f"no '{title}' table in:\n{stdout}")


@pytest.fixture
def trials(demo_store):
    client = MlflowClient(tracking_uri=demo_store.uri)
    return [client.get_run(run_id) for run_id in demo_store.trial_run_ids]


@pytest.mark.slow
def test_shows_differing_params_and_metrics_side_by_side(demo_store, trials):
    prefixes = [r.info.run_id[:8] for r in trials]
    result = invoke("compare", "--tracking-uri", demo_store.uri, *prefixes)
    assert result.exit_code == 0, result.output
    params = section(result.stdout, "param")
    assert params["optimizer.name"] == ["adam", "sgd"]
    assert params["optimizer.momentum"] == ["-", "0.9"]  # SGD's, absent from the Adam run
    assert not {"epochs", "optimizer.lr", "tracking.run_name"} & set(params)  # equal / incidental
    metrics = section(result.stdout, "metric")
    for key in ("valid/acc", "valid/best_acc", "test/acc", "train/loss"):
        shown = [float(v) for v in metrics[key]]
        assert shown == pytest.approx([r.data.metrics[key] for r in trials], abs=1e-4), key


@pytest.mark.slow
def test_all_shows_equal_and_incidental_params_too(demo_store, trials):
    result = invoke("compare", "--tracking-uri", demo_store.uri, "--all", *(r.info.run_id for r in trials))
    assert result.exit_code == 0, result.output
    params = section(result.stdout, "param")
    assert params["epochs"] == ["2", "2"] and params["tracking.run_name"] == demo_store.trial_names
    assert set(params) == set(trials[0].data.params) | set(trials[1].data.params)


@pytest.mark.slow
def test_json_has_one_value_per_run(demo_store, trials):
    result = invoke("compare", "--tracking-uri", demo_store.uri, "--json", *(r.info.run_id for r in trials))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["run_id"] for r in data["runs"]] == demo_store.trial_run_ids
    assert data["params"]["optimizer.name"] == ["adam", "sgd"]
    assert data["metrics"]["test/acc"] == [r.data.metrics["test/acc"] for r in trials]


@pytest.mark.parametrize("refs, expected", [
    (["3721250c"], "at least two runs"),
    (["0123abcd", "ffffffff"], "unknown run '0123abcd'"),
    (["not-an-id", "ffff"], "unknown run 'not-an-id'"),
    (["ab", "cd"], "too short"),
])
@pytest.mark.slow
def test_bad_run_ids_are_one_line_exit_2(demo_store, refs, expected):
    result = invoke("compare", "--tracking-uri", demo_store.uri, *refs)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]


@pytest.mark.parametrize("refs, expected", [
    (["0123abcd"], "at least two runs"),
    (["0123abcd", "ffffffff"], "unknown run '0123abcd'"),
    (["ab", "cd"], "too short"),
])
def test_bad_run_ids_in_an_empty_store_are_one_line_exit_2(store, refs, expected):
    """The fast lane's `launch compare` (the tests above share the session's demo store)."""
    result = invoke("compare", "--tracking-uri", store, *refs)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
