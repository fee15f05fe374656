"""Read side of the MLflow store for `launch runs`, `launch compare` and `launch ui`.

The store is resolved exactly as a run resolves it (--tracking-uri, $MLFLOW_TRACKING_URI,
./mlflow.db), but reading never creates one: a missing SQLite file is a user error.
"""
from __future__ import annotations

import re
from typing import Any

import click

from trainlib import tags as tag

MIN_PREFIX = 4
# Params that differ between any two runs without saying anything about the training.
INCIDENTAL_PARAMS = ("output.", "tracking.")

tracking_uri_option = click.option(
    "--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db).")


def existing_store(tracking_uri: str | None) -> str:
    """The resolved tracking URI; a SQLite store must already exist."""
    from trainlib.errors import ConfigError
    from trainlib.tracking.mlflow_tracker import resolve_tracking_uri, sqlite_file

    uri = resolve_tracking_uri(tracking_uri)
    db = sqlite_file(uri)
    if db and not db.is_file():
        raise ConfigError(f"no MLflow store at {db}; train a run first "
                          f"(launch train) or point --tracking-uri / $MLFLOW_TRACKING_URI at your store")
    return uri


def open_client(tracking_uri: str | None):
    from mlflow import MlflowClient

    from trainlib.tracking.mlflow_tracker import quiet_mlflow_logs

    quiet_mlflow_logs()
    return MlflowClient(tracking_uri=existing_store(tracking_uri))


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
    """The newest parent run of the sweep `sweep`: its `launch.sweep` tag, run name or run id."""
    from trainlib.errors import ConfigError

    value = _literal(sweep, "sweep")
    for filter_string in (f"tags.`{tag.SWEEP}` = {value}", f"attributes.run_name = {value}",
                          f"attributes.run_id = {value}"):
        parents = search(client, exp_ids, filter_string, limit=1)
        if parents:
            return parents[0]
    tagged = search(client, exp_ids, f"tags.`{tag.SWEEP}` != ''")
    known = ", ".join(sorted({r.data.tags[tag.SWEEP] for r in tagged})) or "(no sweeps in this store)"
    raise ConfigError(f"unknown sweep '{sweep}'; valid: {known}")


def children(client, exp_ids: dict[str, str], parent_id: str) -> list[Any]:
    return search(client, exp_ids, f"tags.`{tag.PARENT}` = '{parent_id}'")


def find_run(client, ref: str):
    """A run by its full id or by a unique prefix of at least MIN_PREFIX characters."""
    from trainlib.errors import ConfigError

    if not re.fullmatch(r"[0-9a-f]+", ref):
        raise ConfigError(f"unknown run '{ref}': run ids are hexadecimal; list runs with: launch runs")
    if len(ref) < MIN_PREFIX:
        raise ConfigError(f"run id '{ref}' is too short; give at least {MIN_PREFIX} characters")
    matches = search(client, experiment_ids(client, None), f"attributes.run_id LIKE '{ref}%'", limit=5)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConfigError(f"unknown run '{ref}'; list runs with: launch runs")
    ids = ", ".join(r.info.run_id for r in matches)
    raise ConfigError(f"run id '{ref}' is ambiguous ({ids}); give more characters")


def _literal(text: str, what: str) -> str:
    """A quoted string for an MLflow filter, which has no escapes."""
    from trainlib.errors import ConfigError

    for quote in ("'", '"'):
        if quote not in text:
            return f"{quote}{text}{quote}"
    raise ConfigError(f"{what} '{text}' mixes ' and \" quotes; rename it")
