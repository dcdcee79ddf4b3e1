"""The job queue in the `jobs` table: claim, lease renewal, and fenced writes. Plain SQL, no tuning here.

Claim: the oldest job that is `queued`, or `running` with a lapsed lease (its worker died), becomes this worker's in
one transaction: `SELECT ... FOR UPDATE SKIP LOCKED` then `UPDATE` on Postgres (concurrent claimers skip each other's
rows instead of waiting), one atomic `UPDATE ... WHERE id = (SELECT ...) RETURNING` on SQLite (SQLite serializes
writers, so the sub-select and the update cannot interleave with another claim).

Every claim writes a fresh random `lease_token` and bumps `attempt`. Every later write of the worker is fenced:
`WHERE id = :id AND lease_token = :token AND status = 'running'`; a False return means "the lease is gone, stop and
write nothing more" (another worker took over, or the job was finished or cancelled meanwhile).

Times come from the workers' clocks (UTC); workers on several machines need synchronized clocks (NTP), with a lease
long compared with their skew.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, true, update
from sqlalchemy.orm import Session, sessionmaker

from mdmtune.service.db.models import Job, JobHelper, JobStatus, utcnow


@dataclass(frozen=True)
class Lease:
    """A worker's hold on one job; `token` fences its writes."""

    job_id: str
    token: str
    attempt: int
    worker_id: str


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        Job.status == JobStatus.queued.value,
        and_(Job.status == JobStatus.running.value, Job.lease_expires_at < now),
    )


def _claim_values(worker_id: str, token: str, now: datetime, lease_seconds: float) -> dict[str, object]:
    return {
        "status": JobStatus.running.value,
        "lease_token": token,
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
        "attempt": Job.attempt + 1,
        "worker_id": worker_id,
        "updated_at": now,
    }


def claim_next(sessions: sessionmaker[Session], worker_id: str, lease_seconds: float) -> Lease | None:
    """Take the oldest claimable job, or None when there is none. Exactly one of several concurrent claimers wins."""
    token, now = secrets.token_hex(16), utcnow()
    with sessions() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            job_id = session.scalar(
                select(Job.id)
                .where(_claimable(now))
                .order_by(Job.created_at, Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if job_id is None:
                return None
            target = Job.id == job_id
        else:
            oldest = select(Job.id).where(_claimable(now)).order_by(Job.created_at, Job.id).limit(1)
            target = and_(Job.id == oldest.scalar_subquery(), _claimable(now))
        row = session.execute(
            update(Job)
            .where(target)
            .values(**_claim_values(worker_id, token, now, lease_seconds))
            .returning(Job.id, Job.attempt, Job.started_at)
            .execution_options(synchronize_session=False)
        ).first()
        if row is None:
            return None
        if row.started_at is None:
            session.execute(update(Job).where(Job.id == row.id).values(started_at=now))
        return Lease(job_id=row.id, token=token, attempt=row.attempt, worker_id=worker_id)


def fenced_update(sessions: sessionmaker[Session], lease: Lease, **values: object) -> bool:
    """Write `values` on the job only while this lease holds it; True if written."""
    with sessions() as session, session.begin():
        result = session.execute(
            update(Job)
            .where(Job.id == lease.job_id, Job.lease_token == lease.token, Job.status == JobStatus.running.value)
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def renew(sessions: sessionmaker[Session], lease: Lease, lease_seconds: float) -> bool:
    """Push the lease's expiry forward (the heartbeat); False if the lease is lost."""
    with sessions() as session, session.begin():
        result = session.execute(
            update(Job)
            .where(Job.id == lease.job_id, Job.lease_token == lease.token, Job.status == JobStatus.running.value)
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def finish(
    sessions: sessionmaker[Session],
    lease: Lease,
    status: JobStatus,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    **progress: object,
) -> bool:
    """The final write (succeeded, failed or cancelled), fenced; the lease is cleared with it. `progress`: final
    values of the progress columns (trials_done, nfe, best_value, best_params)."""
    assert status.is_final
    values: dict[str, object] = {
        **progress,
        "status": status.value,
        "finished_at": utcnow(),
        "lease_token": None,
        "lease_expires_at": None,
    }
    if result is not None:
        values["result"] = result
    if error is not None:
        values["error"] = error
    return fenced_update(sessions, lease, **values)


def release(sessions: sessionmaker[Session], lease: Lease, *, count_attempt: bool = True) -> bool:
    """Give the job back (SIGTERM, or a database fault): queued again, so the next worker resumes its study at once.

    count_attempt=False takes this claim back out of `attempt`: a database fault is not the job's doing, and must
    not bring it closer to `max_attempts`."""
    values: dict[str, object] = {"status": JobStatus.queued.value, "lease_token": None, "lease_expires_at": None}
    if not count_attempt:
        values["attempt"] = Job.attempt - 1
    return fenced_update(sessions, lease, **values)


def load_job(sessions: sessionmaker[Session], job_id: str) -> Job:
    """A detached snapshot of the job row."""
    with sessions() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise LookupError(f"no job {job_id}")
        session.expunge(job)
        return job


def cancel_requested(sessions: sessionmaker[Session], job_id: str) -> bool:
    with sessions() as session:
        return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


# Helpers: several workers on one running job (see mdmtune.service.db.models.JobHelper).


def trial_tag(token: str) -> str:
    """The tag a worker's trials carry: derived from its lease/helper token, so that the token (which fences writes)
    is not itself written into the study that users can read."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def join_next(
    sessions: sessionmaker[Session],
    worker_id: str,
    lease_seconds: float,
    max_helpers: int,
    min_free_trials: int,
    exclude: Collection[str] = (),
) -> Lease | None:
    """Register as a helper of the oldest running job (live lease, not being cancelled) that has at least
    `min_free_trials` trials left and fewer than `max_helpers` live helpers, and is not in `exclude` (jobs this
    worker could not help with); None when there is none.

    The helper count is a soft limit (two workers joining at the same instant may both get in)."""
    now = utcnow()
    token = secrets.token_hex(16)
    with sessions() as session, session.begin():
        session.execute(delete(JobHelper).where(JobHelper.expires_at < now))
        helpers = (
            select(func.count())
            .select_from(JobHelper)
            .where(JobHelper.job_id == Job.id, JobHelper.expires_at >= now)
            .scalar_subquery()
        )
        row = session.execute(
            select(Job.id, Job.attempt)
            .where(
                Job.status == JobStatus.running.value,
                Job.lease_expires_at >= now,
                Job.cancel_requested.is_(False),
                Job.objective != "frontier",  # one worker runs a frontier job; there is no shared study to help
                Job.n_trials - Job.trials_done >= min_free_trials,
                helpers < max_helpers,
                Job.id.not_in(list(exclude)) if exclude else true(),
            )
            .order_by(Job.created_at, Job.id)
            .limit(1)
        ).first()
        if row is None:
            return None
        expires = now + timedelta(seconds=lease_seconds)
        session.add(JobHelper(token=token, job_id=row.id, worker_id=worker_id, joined_at=now, expires_at=expires))
    return Lease(job_id=row.id, token=token, attempt=row.attempt, worker_id=worker_id)


def renew_helper(sessions: sessionmaker[Session], helper: Lease, lease_seconds: float) -> bool:
    """Extend a helper's registration; False once it is gone (expired and cleaned up) or its job is not running."""
    with sessions() as session, session.begin():
        running = select(Job.id).where(Job.id == helper.job_id, Job.status == JobStatus.running.value).exists()
        result = session.execute(
            update(JobHelper)
            .where(JobHelper.token == helper.token, running)
            .values(expires_at=utcnow() + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def leave(sessions: sessionmaker[Session], helper: Lease) -> None:
    """Unregister a helper (it finished its last batch)."""
    with sessions() as session, session.begin():
        session.execute(delete(JobHelper).where(JobHelper.token == helper.token))


def live_tags(sessions: sessionmaker[Session], job_id: str) -> set[str]:
    """Tags of the workers alive on the job now: the lease holder (if its lease holds) and unexpired helpers."""
    now = utcnow()
    with sessions() as session:
        tokens = list(
            session.scalars(select(JobHelper.token).where(JobHelper.job_id == job_id, JobHelper.expires_at >= now))
        )
        holder = session.execute(select(Job.lease_token, Job.lease_expires_at).where(Job.id == job_id)).first()
    if holder is not None and holder.lease_token and holder.lease_expires_at and holder.lease_expires_at >= now:
        tokens.append(holder.lease_token)
    return {trial_tag(token) for token in tokens}


def holder_alive(sessions: sessionmaker[Session], job_id: str) -> bool:
    """The job is running under a lease that holds (what a helper needs to keep helping)."""
    with sessions() as session:
        row = session.execute(select(Job.status, Job.lease_expires_at).where(Job.id == job_id)).first()
    if row is None or row.status != JobStatus.running.value or row.lease_expires_at is None:
        return False
    return row.lease_expires_at >= utcnow()
