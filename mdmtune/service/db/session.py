"""Engines and sessions for SQLite (embedded) and Postgres, and Optuna's storage on the same database.

Why these engine options:
- Postgres: the psycopg 3 driver and `pool_pre_ping=True`, because idle pooled connections get dropped by servers
  and proxies, and a worker may sit idle for hours.
- SQLite: WAL journal (readers do not block the writer), a busy timeout (a second writer waits instead of failing at
  once) and foreign keys on. Used from several threads (API + in-process workers), hence check_same_thread=False.

Optuna gets its own engine on the same URL (it manages its own sessions); `optuna_storage` never creates tables:
they are created once by `mdmtune db upgrade` (concurrent creation from several workers races).
"""

from __future__ import annotations

from typing import Any

import optuna
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_S = 30.0


def normalize_url(url: str) -> str:
    """Map `postgresql://` and `postgres://` to the psycopg 3 driver; leave other URLs alone."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def engine_kwargs(url: str) -> dict[str, Any]:
    """create_engine keyword arguments for this URL (shared by our engine and Optuna's)."""
    if is_sqlite(url):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False}}
    return {"pool_pre_ping": True}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for the service's tables with the options above."""
    url = normalize_url(url)
    engine = create_engine(url, **engine_kwargs(url))
    if is_sqlite(url):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (the API returns rows after committing them)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def optuna_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on the service database, without creating or upgrading tables (the migration does).

    Raises a clear error if `mdmtune db upgrade` was not run (Optuna's version check fails on missing tables).
    """
    url = normalize_url(url)
    kwargs = engine_kwargs(url)
    storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs, skip_table_creation=True)
    if is_sqlite(url):
        event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()
    return storage
