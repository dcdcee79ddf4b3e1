"""Service commands: `serve`, `worker`, `db upgrade|downgrade|current`, `keys create|revoke`, and `demo` (cli/demo.py).

Each builds one `Settings` (environment MDMTUNE_*, overridden by the flags given) and hands it down. `serve` runs the
migrations first, so the embedded default needs no other step; workers never create tables.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import typer

from mdmtune.cli.output import emit_json
from mdmtune.service.settings import Settings

db_app = typer.Typer(help="Database schema (Alembic migrations, Optuna's tables).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)

DATABASE_URL_HELP = "SQLAlchemy URL (postgresql://..., sqlite:///...); default: MDMTUNE_DATABASE_URL or SQLite."
DATABASE_URL = typer.Option(None, "--database-url", help=DATABASE_URL_HELP)
DATA_DIR = typer.Option(None, "--data-dir", help="Embedded data folder (SQLite file + artifacts).")
JSON = typer.Option(False, "--json", help="One JSON document on stdout.")


def make_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the flags that were given (not None) on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


QUIET_LOGGERS = ("alembic", "optuna")
"""Libraries whose INFO lines are noise in a service log (alembic's plugin set-up at every start, Optuna's
"a new study created" per job, "trial N finished" per trial); their warnings still show. MDMTUNE_LOG_LEVEL=DEBUG
shows everything."""


def _logging() -> None:
    import os

    level = os.environ.get("MDMTUNE_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)


def serve(
    host: str = typer.Option(None, help="Bind address (default 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default 8000)."),
    data_dir: Path = DATA_DIR,
    database_url: str = DATABASE_URL,
    workers: int = typer.Option(None, "--workers", min=0, help="In-process worker threads (default 1; 0: API only)."),
) -> None:
    """Run the HTTP service with N in-process workers (migrations first)."""
    from mdmtune.cli.embedded import run_server

    _logging()
    settings = make_settings(host=host, port=port, data_dir=data_dir, database_url=database_url, workers=workers)
    run_server(settings)


def worker(
    database_url: str = DATABASE_URL,
    data_dir: Path = typer.Option(None, "--data-dir", help="Embedded data folder (when no database URL)."),
    worker_id: str = typer.Option(None, "--worker-id", help="Name in the jobs table (default host:pid)."),
) -> None:
    """Claim and run tuning jobs until SIGTERM (which stops at the next model batch and gives the job back)."""
    from mdmtune.service.workers import run_worker

    _logging()
    settings = make_settings(database_url=database_url, data_dir=data_dir, worker_id=worker_id)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run_worker(settings, stop)


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("head"),
    database_url: str = DATABASE_URL,
    data_dir: Path = DATA_DIR,
    json_out: bool = JSON,
) -> None:
    """Migrate the project's tables to REVISION (default head) and create/upgrade Optuna's tables."""
    _migrate("upgrade", revision, database_url, data_dir, json_out)


@db_app.command("downgrade")
def db_downgrade(
    revision: str = typer.Argument(..., help='Target revision; "base" drops the project tables.'),
    database_url: str = DATABASE_URL,
    data_dir: Path = DATA_DIR,
    json_out: bool = JSON,
) -> None:
    """Take the project's tables back to REVISION (Optuna's tables are left alone)."""
    _migrate("downgrade", revision, database_url, data_dir, json_out)


def _migrate(direction: str, revision: str, database_url: str | None, data_dir: Path | None, json_out: bool) -> None:
    from mdmtune.service import migrations

    url = make_settings(database_url=database_url, data_dir=data_dir).resolved_database_url
    getattr(migrations, direction)(url, revision)
    _report(url, json_out)


@db_app.command("current")
def db_current(
    database_url: str = DATABASE_URL,
    data_dir: Path = DATA_DIR,
    json_out: bool = JSON,
) -> None:
    """Show the project's schema revision and the newest one shipped."""
    url = make_settings(database_url=database_url, data_dir=data_dir).resolved_database_url
    _report(url, json_out)


def _report(url: str, json_out: bool) -> None:
    from sqlalchemy.engine import make_url

    from mdmtune.service import migrations

    current, head = migrations.current_revision(url), migrations.head_revision()
    safe_url = make_url(url).render_as_string(hide_password=True)
    if json_out:
        emit_json({"database_url": safe_url, "revision": current, "head": head})
    else:
        typer.echo(f"{safe_url}: revision {current or '(empty)'} (head {head})")


def _in_transaction(database_url: str | None, data_dir: Path | None, action: Any) -> Any:
    """`action(session)` in one committed transaction on the service's database (its schema must be current)."""
    from mdmtune.service.db.session import make_engine, make_session_factory
    from mdmtune.service.migrations import require_current_schema

    url = make_settings(database_url=database_url, data_dir=data_dir).resolved_database_url
    require_current_schema(url)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            done = action(session)
            session.commit()
            return done
    finally:
        engine.dispose()


@keys_app.command("create")
def keys_create(
    name: str = typer.Argument(..., help="Who or what the key is for."),
    database_url: str = DATABASE_URL,
    data_dir: Path = DATA_DIR,
    json_out: bool = JSON,
) -> None:
    """Create an API key and print its secret once (only its hash is stored)."""
    from mdmtune.service.db.apikeys import create_api_key

    row, secret = _in_transaction(database_url, data_dir, lambda session: create_api_key(session, name))
    if json_out:
        emit_json({"id": row.id, "name": row.name, "key": secret})
    else:
        typer.echo(secret)
        typer.echo(f"key id {row.id} ({row.name}): shown once, store it now", err=True)


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="The key's id, as `keys create` printed it."),
    database_url: str = DATABASE_URL,
    data_dir: Path = DATA_DIR,
    json_out: bool = JSON,
) -> None:
    """Revoke an API key: every request with it is refused (401) from then on."""
    from mdmtune.service.db.apikeys import revoke_api_key

    row = _in_transaction(database_url, data_dir, lambda session: revoke_api_key(session, key_id))
    if json_out:
        emit_json({"id": row.id, "name": row.name, "revoked": True})
    else:
        typer.echo(f"key id {row.id} ({row.name}) revoked")


def register(app: typer.Typer) -> None:
    from mdmtune.cli.demo import run_demo

    app.command("serve")(serve)
    app.command("worker")(worker)
    app.add_typer(db_app, name="db")
    app.add_typer(keys_app, name="keys")
    app.command("demo")(run_demo)
