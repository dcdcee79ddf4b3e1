"""Settings (MDMTUNE_* environment) and the database plumbing built from them: URLs, engines, UTC times, API keys."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from mdmtune.service.db import Job, make_engine, make_session_factory
from mdmtune.service.db.apikeys import create_api_key, find_api_key, hash_secret
from mdmtune.service.db.models import utcnow
from mdmtune.service.db.session import normalize_url
from mdmtune.service.settings import Settings, is_loopback


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("MDMTUNE_"):
            monkeypatch.delenv(key)


def test_embedded_default_is_sqlite_and_artifacts_under_the_data_dir(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'mdmtune.db'}"
    assert settings.resolved_artifact_dir == tmp_path / "artifacts"
    assert settings.is_embedded and settings.workers == 1


def test_environment_variables_with_the_prefix_set_fields(monkeypatch):
    monkeypatch.setenv("MDMTUNE_DATABASE_URL", "postgresql://u@db/x")
    monkeypatch.setenv("MDMTUNE_LEASE_SECONDS", "8")
    monkeypatch.setenv("MDMTUNE_ALLOWED_URI_ROOTS", "/models:/mnt/ckpt")
    settings = Settings()
    assert settings.database_url == "postgresql://u@db/x" and not settings.is_embedded
    assert settings.lease_seconds == 8 and settings.resolved_heartbeat_seconds == 2
    assert settings.allowed_uri_roots == [Path("/models"), Path("/mnt/ckpt")]
    monkeypatch.setenv("MDMTUNE_ALLOWED_URI_ROOTS", '["/a:b"]')
    assert Settings().allowed_uri_roots == [Path("/a:b")]


def test_bad_values_name_the_field(monkeypatch):
    monkeypatch.setenv("MDMTUNE_LEASE_SECONDS", "-1")
    with pytest.raises(ValidationError, match="lease_seconds"):
        Settings()


def test_api_keys_required_except_embedded_on_loopback():
    assert not Settings(host="127.0.0.1").api_key_required
    assert not Settings(host="localhost").api_key_required
    assert Settings(host="0.0.0.0").api_key_required
    assert Settings(host="127.0.0.1", database_url="postgresql://db/x").api_key_required
    assert Settings(host="127.0.0.1", require_api_key=True).api_key_required
    assert not Settings(host="0.0.0.0", require_api_key=False).api_key_required


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.5.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")


def test_postgres_urls_use_psycopg3():
    assert normalize_url("postgresql://u:p@h:5432/d") == "postgresql+psycopg://u:p@h:5432/d"
    assert normalize_url("postgres://h/d") == "postgresql+psycopg://h/d"
    assert normalize_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_sqlite_engine_uses_wal_and_a_busy_timeout(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA busy_timeout")).scalar() >= 1000
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_postgres_engine_pre_pings(postgres_url):
    engine = make_engine(postgres_url)
    assert engine.pool._pre_ping and engine.dialect.driver == "psycopg"
    engine.dispose()


def test_times_come_back_as_aware_utc(db_url):
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    local = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5)))
    with sessions() as session:
        job = Job(objective="energy", request={}, study_name=f"s-{utcnow().timestamp()}", n_trials=1, created_at=local)
        session.add(job)
        session.commit()
        job_id = job.id
    with sessions() as session:
        created = session.get(Job, job_id).created_at
    engine.dispose()
    assert created.tzinfo is not None and created.utcoffset() == timedelta(0)
    assert created == local


def test_naive_times_are_refused(migrated_sqlite_url):
    engine = make_engine(migrated_sqlite_url)
    with make_session_factory(engine)() as session:
        session.add(
            Job(objective="energy", request={}, study_name="naive", n_trials=1, created_at=datetime(2026, 1, 1))
        )
        with pytest.raises(sa.exc.StatementError, match="naive datetime"):
            session.commit()
    engine.dispose()


def test_api_key_is_found_by_its_secret_and_not_once_revoked(migrated_sqlite_url):
    engine = make_engine(migrated_sqlite_url)
    with make_session_factory(engine)() as session:
        row, secret = create_api_key(session, "ci")
        session.commit()
        assert row.key_hash == hash_secret(secret) and secret not in (row.key_hash, row.prefix)
        assert find_api_key(session, secret).id == row.id
        assert find_api_key(session, secret + "x") is None
        row.revoked = True
        session.commit()
        assert find_api_key(session, secret) is None
    engine.dispose()


def test_every_setting_is_documented_in_the_operations_guide():
    guide = (Path(__file__).resolve().parents[1] / "docs" / "service.md").read_text()
    missing = [name for name in Settings.model_fields if f"`MDMTUNE_{name.upper()}`" not in guide]
    assert missing == []
