"""Schema migrations: the only way the service's schema changes (`mdmtune db upgrade`, also run by `mdmtune serve`).

Shipped inside the package (env.py, script.py.mako, versions/) so that `pip install .` is enough; no alembic.ini.

`upgrade` also creates (or upgrades) Optuna's tables in the same database, once, here: Optuna creates its tables
lazily from every `RDBStorage(...)`, and several workers doing that at the same time race. After this step workers
open the storage with `skip_table_creation=True` (`mdmtune.service.db.session.optuna_storage`).

On Postgres the whole step holds an advisory lock, so two `db upgrade` (say, the API and a migrate container) started
together run one after the other instead of both creating the tables.
"""

from __future__ import annotations

from pathlib import Path

import optuna
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

from mdmtune.errors import InvalidInput
from mdmtune.service.db.session import engine_kwargs, is_sqlite, make_engine, normalize_url

VERSION_TABLE = "mdmtune_alembic_version"
ADVISORY_LOCK_KEY = 0x6D646D74756E65  # "mdmtune"
_HERE = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    """An Alembic Config pointing at the packaged scripts, for this database."""
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def _run_locked(url: str, action: str, revision: str) -> None:
    url = normalize_url(url)
    engine = make_engine(url)
    postgres = not is_sqlite(url)
    try:
        with engine.connect() as conn:
            if postgres:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
                conn.commit()
            try:
                config = alembic_config(url)
                config.attributes["connection"] = conn
                getattr(command, action)(config, revision)
                conn.commit()
                if action == "upgrade":
                    ensure_optuna_tables(url)
            finally:
                if postgres:
                    conn.rollback()
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                    conn.commit()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the project's tables to `revision` and make sure Optuna's tables exist at Optuna's head."""
    if is_sqlite(url):
        _sqlite_parent(url).mkdir(parents=True, exist_ok=True)
    _run_locked(url, "upgrade", revision)


def downgrade(url: str, revision: str) -> None:
    """Take the project's tables back to `revision` ("base" drops them). Optuna's tables are left alone."""
    _run_locked(url, "downgrade", revision)


def current_revision(url: str) -> str | None:
    """The project's revision stored in `mdmtune_alembic_version`, or None for an empty database."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return _current(conn)
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest revision shipped with this version of mdmtune."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def require_current_schema(url: str) -> None:
    """Refuse to work on a database that `mdmtune db upgrade` has not brought to this version's head."""
    from sqlalchemy.engine import make_url

    current, head = current_revision(url), head_revision()
    if current != head:
        where = make_url(normalize_url(url)).render_as_string(hide_password=True)
        found = current or "(empty)"
        message = f"{where} is at schema revision {found}, not {head}: run `mdmtune db upgrade`"
        raise InvalidInput("database_url", message)


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def ensure_optuna_tables(url: str) -> None:
    """Create Optuna's tables if missing and upgrade them if an older Optuna made them."""
    url = normalize_url(url)
    storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url), skip_compatibility_check=True)
    try:
        if storage.get_current_version() != storage.get_head_version():
            storage.upgrade()
    finally:
        storage.engine.dispose()


def _sqlite_parent(url: str) -> Path:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:":
        return Path(".")
    return Path(database).resolve().parent
