"""Set-ups built once per test run and shared read-only (by every pytest-xdist worker too), the
check that no test changed them, and the relocated copies that tests which write take instead."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every worker of this test run sees: pytest's base temp, or under pytest-xdist
    its parent (one per run, holding each worker's own base temp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (made if missing) across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str,
               build: Callable[[Path], dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """`build(folder)` once per test run, whichever worker asks first; the others wait for it and
    read back what it returned (JSON) and the digest of the folder's files when it was done."""
    folder = shared_root(tmp_path_factory) / "shared" / name
    record = folder.with_name(f"{name}.json")
    with locked(folder.with_name(f"{name}.lock")):
        if not record.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a build that failed half-way left
            folder.mkdir(parents=True)
            built = build(folder)
            record.write_text(json.dumps({"built": built, "digest": tree_digest(folder)}))
    data = json.loads(record.read_text())
    return folder, data


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file below `root`, by relative path."""
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def assert_unchanged(root: Path, digest: dict[str, str], fixture: str) -> None:
    """The session-end check of a shared, read-only set-up."""
    now = tree_digest(root)
    changed = sorted(name for name in digest.keys() | now.keys() if digest.get(name) != now.get(name))
    assert not changed, (f"a test changed the shared {fixture} (read-only; take a copy to write): "
                         + ", ".join(changed[:10]))


def forget_artifact_locations(*run_ids: str) -> None:
    """MLflow caches each run's artifact store by run id alone, for the whole process: a copy's run
    (same id, another store) would write into the original's folder. Drop those entries."""
    from trainlib.compat import private

    cache = private("mlflow", "mlflow.tracking._tracking_service.utils", "_artifact_repos_cache")
    for run_id in run_ids:
        cache.pop(run_id, None)


def relocated_copy(src: Path, dst: Path) -> Path:
    """Copy a store folder (its mlflow.db, artifacts and run folders) to `dst` and point the absolute
    paths its database holds (artifact locations, the run folder tag, output.dir) into the copy:
    what a test writes through the copy lands in the copy (after `forget_artifact_locations` of its
    runs in this process). A few MB: cheap."""
    shutil.copytree(src, dst, symlinks=True)
    old, new = str(src), str(dst)
    with sqlite3.connect(dst / "mlflow.db") as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in db.execute(f'PRAGMA table_info("{table}")').fetchall():
                if column[2].upper().startswith(("VARCHAR", "TEXT")):
                    db.execute(f'UPDATE "{table}" SET "{column[1]}" = replace("{column[1]}", ?, ?) '
                               f'WHERE instr("{column[1]}", ?) > 0', (old, new, old))
    db.close()
    return dst
