"""`launch runs` against a real store: a `launch train` run and a sweep's parent with two trials."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from launcher.cli import main
from tests.launcher.conftest import SWEEP


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def table_rows(output: str) -> dict[str, list[str]]:
    """run-id prefix -> cells, for the table's body lines."""
    lines = [line for line in output.splitlines() if line and not line.startswith(("sweep ", "id ", "---", "("))]
    return {line.split()[0]: line.split() for line in lines}


@pytest.mark.slow
def test_lists_every_run_with_status_params_and_best_metrics(demo_store):
    result = invoke("runs", "--tracking-uri", demo_store.uri)
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0].split()
    assert header[:3] == ["id", "name", "status"] and header[-3:] == ["valid/best_acc", "test/acc", "duration"]
    assert {"model.name", "optimizer.name", "optimizer.lr", "epochs"} <= set(header)
    rows = table_rows(result.stdout)
    ids = [demo_store.train_run_id, demo_store.parent_run_id, *demo_store.trial_run_ids]
    assert set(rows) == {i[:8] for i in ids}
    client = MlflowClient(tracking_uri=demo_store.uri)
    for run_id in (demo_store.train_run_id, *demo_store.trial_run_ids):
        run = client.get_run(run_id)
        row = dict(zip(header, rows[run_id[:8]]))
        assert row["status"] == "FINISHED" and row["name"] == run.info.run_name
        assert row["optimizer.name"] == run.data.params["optimizer.name"]
        assert float(row["test/acc"]) == pytest.approx(run.data.metrics["test/acc"], abs=1e-4)
        assert float(row["valid/best_acc"]) == pytest.approx(run.data.metrics["valid/best_acc"], abs=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["name", "parent id"])
def test_sweep_lists_only_its_trials(demo_store, which):
    sweep = SWEEP if which == "name" else demo_store.parent_run_id
    result = invoke("runs", "--tracking-uri", demo_store.uri, "--sweep", sweep)
    assert result.exit_code == 0, result.output
    assert demo_store.parent_run_id in result.stdout.splitlines()[0]
    assert set(table_rows(result.stdout)) == {i[:8] for i in demo_store.trial_run_ids}


@pytest.mark.slow
def test_a_sweep_is_listed_through_an_mlflow_server(demo_store, mlflow_service):
    url, _ = mlflow_service
    result = invoke("runs", "--tracking-uri", url, "--sweep", SWEEP)
    assert result.exit_code == 0, result.output
    assert demo_store.parent_run_id in result.stdout.splitlines()[0]
    assert set(table_rows(result.stdout)) == {i[:8] for i in demo_store.trial_run_ids}


@pytest.mark.slow
def test_json_holds_all_params_and_metrics_as_stored(demo_store):
    result = invoke("runs", "--tracking-uri", demo_store.uri, "--sweep", SWEEP, "--json")
    assert result.exit_code == 0, result.output
    records = {r["run_id"]: r for r in json.loads(result.stdout)}
    assert set(records) == set(demo_store.trial_run_ids)
    client = MlflowClient(tracking_uri=demo_store.uri)
    for run_id, record in records.items():
        run = client.get_run(run_id)
        assert record["params"] == run.data.params and record["metrics"] == run.data.metrics
        assert record["parent_run_id"] == demo_store.parent_run_id and record["experiment"] == "launch"
        assert record["status"] == "FINISHED" and record["duration_s"] > 0


@pytest.mark.slow
def test_experiment_filter_and_limit(demo_store):
    result = invoke("runs", "--tracking-uri", demo_store.uri, "--experiment", "launch", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert list(table_rows(result.stdout)) == [demo_store.trial_run_ids[-1][:8]]  # the newest
    assert "--limit" in result.stdout


@pytest.mark.parametrize("args, expected", [
    (["--experiment", "nope"], "unknown experiment 'nope'; valid: Default, launch"),
    (["--sweep", "nope"], f"unknown sweep 'nope'; valid: {SWEEP}"),
])
@pytest.mark.slow
def test_unknown_experiment_or_sweep_is_one_line_exit_2(demo_store, args, expected):
    result = invoke("runs", "--tracking-uri", demo_store.uri, *args)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {expected}"


def test_missing_store_is_an_error_and_creates_nothing(tmp_path):
    result = invoke("runs", "--tracking-uri", f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}")
    assert result.exit_code == 2 and "no MLflow store" in result.stderr and "launch train" in result.stderr
    result = invoke("runs")  # the default ./mlflow.db
    assert result.exit_code == 2 and "no MLflow store" in result.stderr
    assert not list(tmp_path.iterdir())


def test_empty_store_says_so(store):
    result = invoke("runs", "--tracking-uri", store)
    assert result.exit_code == 0 and "no runs yet" in result.stdout


def test_table_rounds_for_reading_and_json_keeps_full_precision(store):
    client = MlflowClient(tracking_uri=store)
    run = client.create_run(client.create_experiment("rounding"))
    client.log_param(run.info.run_id, "optimizer.lr", "0.062443213556245256")
    client.log_param(run.info.run_id, "epochs", "15")
    client.log_metric(run.info.run_id, "test/acc", 0.9624432135562452)
    client.set_terminated(run.info.run_id)

    table = invoke("runs", "--tracking-uri", store)
    assert table.exit_code == 0, table.output
    row = dict(zip(table.stdout.splitlines()[0].split(), table_rows(table.stdout)[run.info.run_id[:8]]))
    assert (row["optimizer.lr"], row["epochs"], row["test/acc"]) == ("0.0624", "15", "0.9624")
    (record,) = json.loads(invoke("runs", "--tracking-uri", store, "--json").stdout)
    assert record["params"]["optimizer.lr"] == "0.062443213556245256"
    assert record["metrics"]["test/acc"] == 0.9624432135562452


@pytest.mark.slow
def test_a_local_sweep_runs_its_trials_on_the_loopback_node_with_their_cpus_as_threads(demo_store):
    """`launch sweep` without --address starts its own Ray: node IP 127.0.0.1, never the machine's
    network address; each trial (resources.cpu 1) runs torch on 1 thread."""
    client = MlflowClient(tracking_uri=demo_store.uri)
    tags = [client.get_run(r).data.tags for r in demo_store.trial_run_ids]
    assert {t["launch.node_ip"] for t in tags} == {"127.0.0.1"}
    assert {t["launch.threads"] for t in tags} == {"1"}


def add_sweep(client, exp_id: str, name: str, smoke: bool, trials: int) -> str:
    """A sweep's parent run and its trials as `launch sweep` tags them, in a real store."""
    from trainlib import tags as tag

    parent = client.create_run(exp_id, run_name=f"{name}-smoke" if smoke else name,
                               tags={tag.KIND: "sweep", tag.SWEEP: name, tag.SMOKE: str(smoke).lower()})
    for i in range(trials):
        child = client.create_run(exp_id, run_name=f"{name}-{i:05d}", tags={tag.PARENT: parent.info.run_id})
        client.set_terminated(child.info.run_id)
    client.set_terminated(parent.info.run_id)
    return parent.info.run_id


def test_sweep_by_name_prefers_a_full_sweep_over_a_newer_smoke_one(store, client):
    exp_id = client.create_experiment("sweeps")
    only_smoke = add_sweep(client, exp_id, "tiny", smoke=True, trials=1)
    full = add_sweep(client, exp_id, "optim", smoke=False, trials=3)
    add_sweep(client, exp_id, "optim", smoke=True, trials=2)  # newer, a --smoke run of the same file
    result = invoke("runs", "--tracking-uri", store, "--sweep", "optim")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"sweep optim: parent run {full} (optim), 3 trials"
    smoke = invoke("runs", "--tracking-uri", store, "--sweep", "tiny")
    assert smoke.stdout.splitlines()[0] == (f"sweep tiny: parent run {only_smoke} (tiny-smoke), 1 trials "
                                            "(a --smoke sweep: no other sweep has this name)")
