"""Read side of the MLflow store for `launch runs`, `launch compare` and `launch ui`.

The store is resolved exactly as a run resolves it (--tracking-uri, $MLFLOW_TRACKING_URI,
./mlflow.db), but reading never creates one: a missing SQLite file is a user error.
"""
from __future__ import annotations

from typing import Any

import click

from trainlib import tags as tag
from trainlib.tracking.run_ids import find_run, looks_like_run_id

# Params that differ between any two runs without saying anything about the training.
INCIDENTAL_PARAMS = ("output.", "tracking.")

tracking_uri_option = click.option(
    "--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db).")


def existing_store(tracking_uri: str | None) -> str:
    """The resolved tracking URI; a SQLite store must already exist."""
    from trainlib.tracking.mlflow_tracker import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    open_client(uri)
    return uri


def open_client(tracking_uri: str | None):
    """A client on an existing, usable store (see trainlib.tracking.mlflow_store)."""
    from trainlib.tracking.mlflow_store import open_store

    return open_store(tracking_uri, create=False)


def experiment_ids(client, name: str | None) -> dict[str, str]:
    """Experiment id -> name: the one named, or every active experiment."""
    from trainlib.errors import ConfigError

    experiments = client.search_experiments()
    if name is None:
        return {e.experiment_id: e.name for e in experiments}
    for exp in experiments:
        if exp.name == name:
            return {exp.experiment_id: exp.name}
    valid = ", ".join(sorted(e.name for e in experiments)) or "(none yet)"
    raise ConfigError(f"unknown experiment '{name}'; valid: {valid}")


def search(client, exp_ids: dict[str, str], filter_string: str = "", limit: int = 1000) -> list[Any]:
    if not exp_ids:
        return []
    return client.search_runs(list(exp_ids), filter_string=filter_string, max_results=limit,
                              order_by=["attributes.start_time DESC"])


def sweep_parent(client, exp_ids: dict[str, str], sweep: str):
    """The newest parent run of the sweep `sweep`: its `launch.sweep` tag, run name, run id or id prefix.
    By name, a full sweep wins over newer `--smoke` ones; only a smoke sweep is found when there is no other."""
    from trainlib.errors import ConfigError

    value = _literal(sweep, "sweep")
    for filter_string in (f"tags.`{tag.SWEEP}` = {value}", f"attributes.run_name = {value}",
                          f"attributes.run_id = {value}"):
        parents = search(client, exp_ids, filter_string)
        if parents:
            return next((p for p in parents if not is_smoke(p)), parents[0])
    if looks_like_run_id(sweep) and search(client, exp_ids, f"attributes.run_id LIKE '{sweep}%'", limit=1):
        return find_run(client, sweep)  # the parent run's id prefix, as `launch runs` prints it
    tagged = search(client, exp_ids, f"tags.`{tag.SWEEP}` != ''")
    known = ", ".join(sorted({r.data.tags[tag.SWEEP] for r in tagged})) or "(no sweeps in this store)"
    raise ConfigError(f"unknown sweep '{sweep}'; valid: {known}")


def is_smoke(run) -> bool:
    return run.data.tags.get(tag.SMOKE) == "true"


def children(client, exp_ids: dict[str, str], parent_id: str) -> list[Any]:
    return search(client, exp_ids, f"tags.`{tag.PARENT}` = '{parent_id}'")


def _literal(text: str, what: str) -> str:
    """A quoted string for an MLflow filter, which has no escapes."""
    from trainlib.errors import ConfigError

    for quote in ("'", '"'):
        if quote not in text:
            return f"{quote}{text}{quote}"
    raise ConfigError(f"{what} '{text}' mixes ' and \" quotes; rename it")
