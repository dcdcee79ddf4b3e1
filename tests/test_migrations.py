"""Migrations: upgrade from empty, downgrade/upgrade round trip, models == migrations, no clash with Optuna's stamp.

Run on both real databases: a SQLite file and a fresh Postgres database per test.
"""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy as sa
from alembic import command

from mdmtune.service import migrations
from mdmtune.service.db.session import make_engine, optuna_storage

PROJECT_TABLES = {"api_keys", "checkpoints", "eval_sets", "jobs", "job_helpers"}


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_db_url")


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _optuna_stamp(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


def test_upgrade_from_empty_creates_project_and_optuna_tables(empty_url):
    assert migrations.current_revision(empty_url) is None
    migrations.upgrade(empty_url)
    tables = _tables(empty_url)
    assert tables >= PROJECT_TABLES
    assert {"studies", "trials", "version_info", "alembic_version", "mdmtune_alembic_version"} <= tables
    assert migrations.current_revision(empty_url) == migrations.head_revision()
    storage = optuna_storage(empty_url)  # opens without creating tables: they exist at Optuna's head
    assert storage.get_current_version() == storage.get_head_version()


def test_project_and_optuna_keep_separate_alembic_stamps(empty_url):
    migrations.upgrade(empty_url)
    optuna_head = optuna_storage(empty_url).get_head_version()
    assert _optuna_stamp(empty_url) == [optuna_head]
    assert migrations.current_revision(empty_url) == migrations.head_revision() != optuna_head


def test_downgrade_to_base_then_upgrade_round_trips_and_keeps_optuna_studies(empty_url):
    migrations.upgrade(empty_url)
    study = optuna.create_study(storage=optuna_storage(empty_url), study_name="kept")
    study.enqueue_trial({"a": 1.0})
    migrations.downgrade(empty_url, "base")
    assert migrations.current_revision(empty_url) is None
    assert not (_tables(empty_url) & PROJECT_TABLES)
    migrations.upgrade(empty_url)
    assert _tables(empty_url) >= PROJECT_TABLES
    reloaded = optuna.load_study(storage=optuna_storage(empty_url), study_name="kept")
    assert len(reloaded.trials) == 1


def test_models_match_migrations(empty_url):
    """Alembic autogenerate finds nothing to add: the models and the migration scripts say the same thing."""
    migrations.upgrade(empty_url)
    command.check(migrations.alembic_config(empty_url))


def test_eval_set_facts_arrive_empty_on_old_rows_and_leave_with_a_downgrade(empty_url):
    """0005 adds eval_sets.facts: a row uploaded before it keeps its values with facts NULL (computed at its first
    job submission); a downgrade to 0004 drops the column and keeps the row."""
    migrations.upgrade(empty_url, "0004")
    row = {"id": "e" * 32, "owner": "local", "sha": "0" * 64, "count": 3, "kind": "infill", "path": "old.jsonl"}
    insert = sa.text(
        "INSERT INTO eval_sets (id, owner_key_id, sha256, record_count, kind, size, path, created_at) "
        "VALUES (:id, :owner, :sha, :count, :kind, 0, :path, CURRENT_TIMESTAMP)"
    )
    engine = make_engine(empty_url)
    try:
        with engine.begin() as conn:
            conn.execute(insert, row)
        migrations.upgrade(empty_url)
        with engine.connect() as conn:
            kept = conn.execute(sa.text("SELECT record_count, kind, facts FROM eval_sets")).one()
        assert tuple(kept) == (3, "infill", None)
        migrations.downgrade(empty_url, "0004")
        columns = {c["name"] for c in sa.inspect(engine).get_columns("eval_sets")}
        assert "facts" not in columns and "record_count" in columns
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM eval_sets")).scalar() == 1
    finally:
        engine.dispose()


def test_upgrade_twice_is_a_no_op(empty_url):
    migrations.upgrade(empty_url)
    migrations.upgrade(empty_url)
    assert migrations.current_revision(empty_url) == migrations.head_revision()


def test_concurrent_upgrades_on_postgres_both_succeed(postgres_db_url):
    """The API and a migrate container may start together; the advisory lock makes them take turns."""
    import threading

    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def upgrade() -> None:
        barrier.wait()
        try:
            migrations.upgrade(postgres_db_url)
        except BaseException as error:  # collected and asserted on below
            errors.append(error)

    threads = [threading.Thread(target=upgrade) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert migrations.current_revision(postgres_db_url) == migrations.head_revision()
    assert _optuna_stamp(postgres_db_url) == [optuna_storage(postgres_db_url).get_head_version()]


def test_a_worker_refuses_a_database_that_was_not_upgraded(sqlite_url):
    from mdmtune.errors import InvalidInput
    from mdmtune.service.settings import Settings
    from mdmtune.service.workers import Worker

    with pytest.raises(InvalidInput, match="run `mdmtune db upgrade`"):
        Worker(Settings(database_url=sqlite_url))
    migrations.upgrade(sqlite_url)
    Worker(Settings(database_url=sqlite_url)).engine.dispose()
