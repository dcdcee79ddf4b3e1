"""SQLAlchemy 2 models of the service's own tables (checkpoints, eval_sets, jobs, api_keys).

What is NOT here, on purpose: a `trials` table. Trials live only in Optuna's own tables (RDBStorage, same database),
which are the single source of truth: the workers write them through ask/tell, optuna-dashboard reads them, and the
API reads them with `mdmtune.service.workers.jobs.list_trials` (by the job's `study_name`). A copy here would be a
second truth that could disagree after a crash.

Conventions for every table:
- ids are 32-char hex strings (uuid4), generated in Python, so both SQLite and Postgres behave the same.
- times are timezone-aware UTC (`UtcDateTime`); SQLite stores them naive, this type puts the UTC back on read.
- `owner_key_id` is the `api_keys.id` of the creator, or `LOCAL_OWNER` when the server runs without keys.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

LOCAL_OWNER = "local"
"""Owner of everything created while API keys are not required (embedded server on loopback)."""

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> str:
    """A fresh 32-char hex id."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """Now, timezone-aware UTC: the only clock the service writes."""
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator):
    """A DateTime that is always aware UTC in Python, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use mdmtune.service.db.models.utcnow()")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


JsonType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base; the naming convention gives constraints stable names for Alembic on both databases."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class JobStatus(str, enum.Enum):
    """A job's life: queued -> running -> succeeded | failed | cancelled. A lapsed lease sends running back to work."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class ApiKey(Base):
    """An API key. The secret is shown once at creation; only its sha256 is stored (the key is 256 random bits,
    so a fast hash is enough: there is nothing to brute-force)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True, comment="sha256 hex of the secret")
    prefix: Mapped[str] = mapped_column(String(16), nullable=False, comment="first chars of the secret, for display")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class Checkpoint(Base):
    """An uploaded (or operator-allowed server-side) model checkpoint, addressed by the sha256 of its bytes."""

    __tablename__ = "checkpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_key_id: Mapped[str] = mapped_column(String(32), nullable=False, default=LOCAL_OWNER, index=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True, comment="of the uploaded bytes")
    format: Mapped[str] = mapped_column(String(16), nullable=False, comment="native | hf | torchscript")
    size: Mapped[int] = mapped_column(BigInteger, nullable=False, comment="bytes as uploaded")
    path: Mapped[str] = mapped_column(
        Text, nullable=False, comment="file or unpacked folder; relative paths are under the artifact dir"
    )
    filename: Mapped[str | None] = mapped_column(Text, nullable=True, comment="the client's file name, if any")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    meta: Mapped[dict[str, Any] | None] = mapped_column(
        JsonType, nullable=True, comment="declared conventions, read at upload (no weights)"
    )


class EvalSetRow(Base):
    """The row of an uploaded JSONL eval set, addressed by the sha256 of its bytes (the records themselves are
    mdmtune.data.evalsets.EvalSet, read from the file at `path`); `facts` spare a job submission the file."""

    __tablename__ = "eval_sets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_key_id: Mapped[str] = mapped_column(String(32), nullable=False, default=LOCAL_OWNER, index=True)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    record_count: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False, comment="completion | infill")
    size: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    path: Mapped[str] = mapped_column(Text, nullable=False, comment="relative paths are under the artifact dir")
    filename: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    facts: Mapped[dict[str, Any] | None] = mapped_column(
        JsonType, nullable=True, comment="what job checks read, computed at upload (mdmtune.tuning.evalset_facts)"
    )


class Job(Base):
    """A tuning job: the validated request, the lease of the worker running it, its progress and its result.

    Lease and fencing: a worker that claims the job writes a fresh `lease_token` and `lease_expires_at` and bumps
    `attempt`; it renews `lease_expires_at` by heartbeat. Every later write of that worker carries
    `WHERE lease_token = :its_token`, so a worker that lost its lease (thought dead, then woke up) changes nothing.
    A `running` job whose `lease_expires_at` is in the past may be claimed again by any worker.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("owner_key_id", "idempotency_key", name="uq_jobs_owner_idempotency"),
        Index("ix_jobs_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner_key_id: Mapped[str] = mapped_column(String(32), nullable=False, default=LOCAL_OWNER, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=JobStatus.queued.value)
    objective: Mapped[str] = mapped_column(String(16), nullable=False, comment="energy | quality")
    request: Mapped[dict[str, Any]] = mapped_column(
        JsonType, nullable=False, comment="the full validated TuneSpec, defaults included (TuneSpec.to_dict())"
    )
    checkpoint_id: Mapped[str | None] = mapped_column(ForeignKey("checkpoints.id"), nullable=True)
    eval_set_id: Mapped[str | None] = mapped_column(ForeignKey("eval_sets.id"), nullable=True)
    validate_eval_set_id: Mapped[str | None] = mapped_column(
        ForeignKey("eval_sets.id"), nullable=True, comment="quality: a second set re-scored when the search ends"
    )

    # Idempotency (IETF httpapi draft): same key + same request hash -> the same job; same key, other hash -> 422.
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True, comment="sha256 of the request body")

    study_name: Mapped[str] = mapped_column(String(128), nullable=False, unique=True, comment="Optuna study")

    # Lease (see class docstring).
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=0, comment="how many times it was claimed")
    worker_id: Mapped[str | None] = mapped_column(String(255), nullable=True, comment="last worker that claimed it")
    timeout_seconds: Mapped[float | None] = mapped_column(
        Float, nullable=True, comment="running time limit; None: the worker's job_timeout_seconds"
    )
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)

    # Progress, written by the worker as trials finish (counts are what the Optuna study holds).
    n_trials: Mapped[int] = mapped_column(Integer, nullable=False, comment="requested finished trials")
    trials_done: Mapped[int] = mapped_column(Integer, nullable=False, default=0, comment="finished trials so far")
    nfe: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0, comment="model forward passes so far")
    best_value: Mapped[float | None] = mapped_column(Float, nullable=True, comment="best objective value so far")
    best_params: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True, comment='{"a": .., "b": ..}')

    created_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, comment="first claim")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    result: Mapped[dict[str, Any] | None] = mapped_column(
        JsonType, nullable=True, comment="the TuneResult as JSON (best, baselines, trials summary, figures)"
    )
    error: Mapped[str | None] = mapped_column(Text, nullable=True, comment="why it failed (status failed)")


class JobHelper(Base):
    """A worker helping with a running job it does not hold: it asks and tells trials of the job's study beside the
    lease holder, and renews `expires_at` by heartbeat. It never writes the job row (progress and the result are the
    lease holder's). Its trials carry its tag (`trial_tag(token)`) in their user attrs, so that the RUNNING trials of
    a helper that died (row expired or gone) are told FAIL and re-enqueued by the lease holder."""

    __tablename__ = "job_helpers"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True)
    worker_id: Mapped[str] = mapped_column(String(255), nullable=False)
    joined_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, nullable=False)
