"""Shared fixtures for every test file. Keep this file additive: others build on these names.

Databases (real ones, no mocks):
- `postgres_url` (session scope): a fresh database `mdmtune_t_<random>` on the real Postgres at 127.0.0.1:5432
  (user postgres, trust auth), created through the `test` database and dropped at the end of the session. Empty:
  no tables. Tests that need it are skipped (with the reason) when the server does not answer.
- `postgres_db_url` (function scope): a fresh, empty Postgres database per test (for tests that change the schema).
- `migrated_postgres_url` (session scope): `postgres_url` after `mdmtune db upgrade` (project + Optuna tables).
- `module_postgres_url` (module scope): a fresh, migrated Postgres database for one test module only (so a module
  may reason about every row in it, e.g. "the oldest queued job").
- `sqlite_url` (function scope): a SQLite file URL in tmp_path, empty.
- `migrated_sqlite_url` (function scope): `sqlite_url` after the upgrade.
- `no_bubblewrap` (function scope): the code sandbox as on a machine without bubblewrap.
- `db_url` (function scope, parametrized "sqlite" | "postgres"): a migrated database of each kind; tests using it
  run twice. On Postgres the session's database is shared, so such tests must not assume an empty jobs table
  (filter by the ids they created).

URLs are plain SQLAlchemy URLs (postgresql+psycopg://..., sqlite:///...); pass them to `Settings(database_url=...)`.

Helpers importable from test modules (`from conftest import ...`), kept stable: `create_pg_database()` -> URL of a
new empty database, `drop_pg_database(url)`, `_postgres_available()` -> None or the reason Postgres is unreachable.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_admin():
    import psycopg

    return psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True, connect_timeout=3)


def _postgres_available() -> str | None:
    """None if the Postgres server answers, else why not."""
    try:
        with _pg_admin():
            return None
    except Exception as error:  # any failure to connect means: skip, and say why
        return f"Postgres at 127.0.0.1:5432 not reachable: {error}"


def create_pg_database() -> str:
    """Create an empty database with a random name; return its SQLAlchemy URL."""
    name = f"mdmtune_t_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_pg_database(url: str) -> None:
    """Drop the database (terminating leftover connections, e.g. from killed worker processes)."""
    name = url.rsplit("/", 1)[1]
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    reason = _postgres_available()
    if reason:
        pytest.skip(reason)
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture
def postgres_db_url() -> Iterator[str]:
    reason = _postgres_available()
    if reason:
        pytest.skip(reason)
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> str:
    from mdmtune.service.migrations import upgrade

    upgrade(postgres_url)
    return postgres_url


@pytest.fixture(scope="module")
def module_postgres_url() -> Iterator[str]:
    reason = _postgres_available()
    if reason:
        pytest.skip(reason)
    from mdmtune.service.migrations import upgrade

    url = create_pg_database()
    upgrade(url)
    yield url
    drop_pg_database(url)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mdmtune.db'}"


@pytest.fixture
def migrated_sqlite_url(sqlite_url: str) -> str:
    from mdmtune.service.migrations import upgrade

    upgrade(sqlite_url)
    return sqlite_url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request) -> str:
    if request.param == "sqlite":
        return request.getfixturevalue("migrated_sqlite_url")
    return request.getfixturevalue("migrated_postgres_url")


@pytest.fixture()
def no_bubblewrap(monkeypatch) -> Iterator[None]:
    """This machine as one without bubblewrap (not on PATH), the weak sandbox not allowed by the environment; the
    sandbox's check is made again, and forgotten afterwards."""
    from mdmtune import sandbox

    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv(sandbox.ALLOW_WEAK_ENV, raising=False)
    sandbox.strong_sandbox_problem.cache_clear()
    yield
    sandbox.strong_sandbox_problem.cache_clear()
