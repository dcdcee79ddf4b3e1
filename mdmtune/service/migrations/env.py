"""Alembic environment of mdmtune, run by `mdmtune.service.migrations.upgrade` (not by the `alembic` command).

Two rules keep the project and Optuna apart in one database:
- the project's revision is kept in its OWN table, `mdmtune_alembic_version`, because Optuna stamps its own Alembic
  revision into the default `alembic_version` table (sharing it would make each side see the other's revision);
- `include_object` ignores every table that is not in the project's metadata (Optuna's tables), so autogenerate never
  proposes to drop them.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from mdmtune.service.db.models import Base
from mdmtune.service.db.session import make_engine

VERSION_TABLE = "mdmtune_alembic_version"


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Only the project's own tables take part in migrations."""
    return not (type_ == "table" and reflected and compare_to is None)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Use the caller's connection when given (so it can hold a lock around the upgrade), else open one."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("mdmtune migrations run online only (mdmtune db upgrade)")
run_migrations_online()
