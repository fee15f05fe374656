"""A new SQLite store starts as a copy of a once-migrated empty template: the same tables MLflow's
own first open makes, and its own Default experiment."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from mlflow import MlflowClient

from trainlib.tracking.mlflow_store import open_store


def schema(db: Path) -> set[tuple[str, tuple[str, ...]]]:
    """Each table's and index's definition (its lines in any order: MLflow's own migrations order a
    table's CHECK constraints differently from one process to the next) and the schema's revision."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    return {(name, tuple(sorted(line.strip().rstrip(",") for line in (sql or "").splitlines()))) for name, sql in rows
            } | {("alembic_version", (str(version),))}


def test_new_stores_are_copies_of_the_migrated_template(tmp_path, monkeypatch, empty_store_template):
    monkeypatch.setenv("LAUNCH_CACHE_DIR", str(tmp_path / "cache"))
    start_ms = int(time.time() * 1000)
    for name in ("a", "b"):
        open_store(f"sqlite:///{tmp_path / name / 'mlflow.db'}", create=True)
    [template] = (tmp_path / "cache").glob("mlflow-*-tables.db")
    mlflow_made = schema(empty_store_template)  # MLflow's own first open, migrations and all
    assert schema(template) == mlflow_made
    for name in ("a", "b"):
        db = tmp_path / name / "mlflow.db"
        assert schema(db) == mlflow_made
        [default] = MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
        assert default.name == "Default" and default.creation_time >= start_ms  # its own, not the template's
    with sqlite3.connect(template) as conn:
        assert conn.execute("SELECT COUNT(*) FROM experiments").fetchone() == (0,)


def test_without_a_writable_cache_mlflow_migrates_the_store_itself(tmp_path, monkeypatch, empty_store_template):
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("LAUNCH_CACHE_DIR", str(tmp_path / "not-a-folder"))
    db = tmp_path / "store" / "mlflow.db"
    client = open_store(f"sqlite:///{db}", create=True)
    assert schema(db) == schema(empty_store_template)
    assert [e.name for e in client.search_experiments()] == ["Default"]
