"""Open an MLflow tracking store: the one place a client is made.

A new SQLite store is created (its schema migrated) by one process at a time, under a lock on
the store's folder: MLflow's migration is not safe against a second process doing the same,
and a race leaves a half-migrated store no one can open. A store that cannot be used (an
unknown URI scheme, a file that is not a SQLite database, a read-only folder, no store where
one must exist) is a user error naming the store, raised before anything is written.

Creating a SQLite store runs MLflow's ~60 schema migrations (about 1.5 s). They are run once per
machine and MLflow version into an empty template (`<cache>/mlflow-<version>-tables.db`, the
cache of trainlib.artifacts_fetch), which a new store starts as a copy of: the same tables MLflow's
own first open makes, migrated to the same head (MLflow verifies it on open), and no rows: the
store's first open still creates its Default experiment, as before.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from trainlib.diskspace import accepts_writes, existing_ancestor
from trainlib.errors import ConfigError
from trainlib.tracking.mlflow_tracker import quiet_mlflow_logs, resolve_tracking_uri, sqlite_file

SQLITE_HEADER = b"SQLite format 3\x00"
HINT = "use sqlite:///PATH/mlflow.db, http(s)://HOST:PORT or a file path"


def open_store(uri: str | None, *, create: bool):
    """An MlflowClient on the resolved store. `create=False`: a missing SQLite file is an error
    (reading never creates a store); `create=True`: it is created, under the lock."""
    uri = resolve_tracking_uri(uri)
    check_scheme(uri)
    db = sqlite_file(uri)
    if db is None:
        from mlflow import MlflowClient

        quiet_mlflow_logs()
        return MlflowClient(tracking_uri=uri)
    if not db.exists() and not create:
        raise ConfigError(f"no MLflow store at {db}; train a run first (launch train) "
                          f"or point --tracking-uri / $MLFLOW_TRACKING_URI at your store")
    check_sqlite(db, writable=create)
    with store_lock(db):  # under the lock: another process may be creating this very store
        if db.exists() and db.stat().st_size and not _has_mlflow_tables(db):
            raise ConfigError(f"{db} is a SQLite database but not an MLflow store (no 'experiments' table); "
                              f"point --tracking-uri at your store")
        if not db.exists() or not db.stat().st_size:
            _start_from_template(db)
        return _client(uri)


def check_scheme(uri: str) -> None:
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    known = _known_schemes()
    if known and scheme not in known:
        valid = ", ".join(sorted(s for s in known if s))
        raise ConfigError(f"tracking URI '{uri}': unknown scheme '{scheme}' (valid: {valid}); {HINT}")


def _known_schemes() -> set[str]:
    """The schemes MLflow has a tracking store for (plugins included); empty if MLflow moved them."""
    from trainlib.compat import PrivateApiMoved, mlflow_tracking_schemes

    try:
        return mlflow_tracking_schemes()
    except PrivateApiMoved:  # without it, MLflow's own error stands
        return set()


def check_sqlite(db: Path, writable: bool) -> None:
    """The file is a SQLite database (or absent / empty) and, to write, its folder accepts files."""
    if db.is_dir():
        raise ConfigError(f"MLflow store {db} is a folder, not a SQLite file; {HINT}")
    if db.exists() and db.stat().st_size:
        with open(db, "rb") as fh:
            if fh.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise ConfigError(f"MLflow store {db} is not a SQLite database (corrupt or another file); "
                                  f"move it away or point --tracking-uri at your store")
    if writable:
        folder = existing_ancestor(db.parent)
        if not accepts_writes(folder) or (db.exists() and not accepts_writes(db)):
            raise ConfigError(f"MLflow store {db} is read-only ({folder} does not accept writes); "
                              f"point --tracking-uri at a writable place")


def _start_from_template(db: Path) -> None:
    """Make the new store `db` a copy of the migrated empty template (made first if this machine has none);
    without it (a cache that cannot be written, a template that could not be made), MLflow migrates
    the new store itself, as it always did."""
    try:
        template = tables_template()
    except Exception:  # only a shortcut: OSError, or MLflow's or SQLAlchemy's own errors
        return
    partial = db.with_name(f".{db.name}.{os.getpid()}.partial")
    try:
        shutil.copyfile(template, partial)
        os.replace(partial, db)  # a store appears whole or not at all
    finally:
        partial.unlink(missing_ok=True)


def tables_template() -> Path:
    """The empty, migrated SQLite store of the installed MLflow (see the module's docstring)."""
    from importlib.metadata import version

    from trainlib.cache import cache_root
    from trainlib.compat import mlflow_create_tables

    template = cache_root() / f"mlflow-{version('mlflow')}-tables.db"
    if template.is_file():
        return template
    template.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=template.parent, prefix=f".{template.name}.", suffix=".partial")
    os.close(fd)
    try:
        quiet_mlflow_logs()
        mlflow_create_tables(f"sqlite:///{partial}")
        os.replace(partial, template)  # two processes making it at once: either copy is whole
    finally:
        Path(partial).unlink(missing_ok=True)
    return template


def _has_mlflow_tables(db: Path) -> bool:
    import sqlite3

    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'experiments'").fetchone() is not None
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"MLflow store {db} cannot be read: {exc}") from None


@contextmanager
def store_lock(db: Path) -> Iterator[None]:
    """An exclusive flock on the store's folder (no lock file left behind)."""
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the MLflow store's folder {db.parent}: {exc.strerror}") from None
    fd = os.open(db.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _client(uri: str):
    """A client on a SQLite store; its first query creates or migrates the schema."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError  # MLflow's SQL stores are built on it

    quiet_mlflow_logs()
    client = MlflowClient(tracking_uri=uri)
    try:
        client.search_experiments(max_results=1)
    except (MlflowException, SQLAlchemyError) as exc:  # a truncated or foreign database, a newer schema
        raise ConfigError(f"cannot open the MLflow store {uri}: {_first_line(exc)}") from None
    return client


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:300]
