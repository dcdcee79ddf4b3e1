"""The job queue on real SQLite and Postgres: claim semantics, lease lapse, fencing, release.

Leases are made to lapse by writing an expiry in the past (no sleeping, no timing assertions).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from mdmtune.service.db import Job, make_engine, make_session_factory, optuna_storage
from mdmtune.service.db.models import utcnow
from mdmtune.service.workers import queue
from mdmtune.service.workers.jobs import submit_job
from mdmtune.tuning.spec import TuneSpec


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request) -> str:
    """This module's own database (a Postgres one per module), so `isolated` touches no other module's jobs."""
    return request.getfixturevalue("migrated_sqlite_url" if request.param == "sqlite" else "module_postgres_url")


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def isolated(sessions):
    """Jobs left claimable by earlier tests of this module are finished first: `claim_next` sees this test's only."""
    with sessions() as session:
        session.execute(
            update(Job).where(Job.status.in_(["queued", "running"])).values(status="cancelled", lease_token=None)
        )
        session.commit()
    return sessions


def _submit(sessions, url: str, n: int = 1) -> list[str]:
    storage = optuna_storage(url)
    ids = []
    with sessions() as session:
        for _ in range(n):
            ids.append(submit_job(session, storage, TuneSpec(objective="energy", steps=4, n_trials=3)).id)
    return ids


def _lapse(sessions, job_id: str) -> None:
    with sessions() as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()


def _concurrent_claims(sessions, count: int) -> list[queue.Lease | None]:
    barrier = threading.Barrier(count)
    results: list[queue.Lease | None] = [None] * count

    def claim(i: int) -> None:
        barrier.wait()
        results[i] = queue.claim_next(sessions, f"claimer-{i}", lease_seconds=60)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_claimers_of_one_job_exactly_one_wins(isolated, db_url):
    (job_id,) = _submit(isolated, db_url)
    leases = [lease for lease in _concurrent_claims(isolated, 6) if lease is not None]
    assert [lease.job_id for lease in leases] == [job_id]
    assert leases[0].attempt == 1


def test_concurrent_claimers_of_two_jobs_get_one_each(isolated, db_url):
    ids = _submit(isolated, db_url, 2)
    leases = [lease for lease in _concurrent_claims(isolated, 4) if lease is not None]
    assert sorted(lease.job_id for lease in leases) == sorted(ids)


def test_claim_takes_the_oldest_queued_job_first(isolated, db_url):
    first, second = _submit(isolated, db_url, 2)
    assert queue.claim_next(isolated, "w", 60).job_id == first
    assert queue.claim_next(isolated, "w", 60).job_id == second
    assert queue.claim_next(isolated, "w", 60) is None


def test_live_lease_is_not_reclaimed_but_a_lapsed_one_is(isolated, db_url):
    (job_id,) = _submit(isolated, db_url)
    first = queue.claim_next(isolated, "a", 60)
    assert queue.claim_next(isolated, "b", 60) is None
    _lapse(isolated, job_id)
    second = queue.claim_next(isolated, "b", 60)
    assert second is not None and second.job_id == job_id
    assert second.attempt == first.attempt + 1 and second.token != first.token
    job = queue.load_job(isolated, job_id)
    assert (job.worker_id, job.lease_token, job.attempt) == ("b", second.token, 2)


def test_stale_lease_token_final_write_changes_nothing(isolated, db_url):
    (job_id,) = _submit(isolated, db_url)
    stale = queue.claim_next(isolated, "a", 60)
    _lapse(isolated, job_id)
    fresh = queue.claim_next(isolated, "b", 60)
    before = queue.load_job(isolated, job_id)

    assert not queue.finish(isolated, stale, queue.JobStatus.succeeded, result={"best": {"a": 9.0}})
    assert not queue.finish(isolated, stale, queue.JobStatus.failed, error="stale")
    assert not queue.fenced_update(isolated, stale, trials_done=99)
    assert not queue.renew(isolated, stale, 60)
    assert not queue.release(isolated, stale)
    after = queue.load_job(isolated, job_id)
    for column in ("status", "result", "error", "trials_done", "lease_token", "lease_expires_at", "worker_id"):
        assert getattr(after, column) == getattr(before, column), column

    assert queue.finish(isolated, fresh, queue.JobStatus.succeeded, result={"best": {"a": 1.0}})
    done = queue.load_job(isolated, job_id)
    assert (done.status, done.result, done.lease_token) == ("succeeded", {"best": {"a": 1.0}}, None)
    assert not queue.finish(isolated, fresh, queue.JobStatus.failed, error="twice")


def test_released_job_is_queued_again_and_claimable_at_once(isolated, db_url):
    (job_id,) = _submit(isolated, db_url)
    lease = queue.claim_next(isolated, "a", 60)
    assert queue.release(isolated, lease)
    job = queue.load_job(isolated, job_id)
    assert (job.status, job.lease_token) == ("queued", None)
    again = queue.claim_next(isolated, "b", 60)
    assert again.job_id == job_id and again.attempt == 2


def test_renewal_moves_the_expiry_forward(isolated, db_url):
    (job_id,) = _submit(isolated, db_url)
    lease = queue.claim_next(isolated, "a", 1)
    before = queue.load_job(isolated, job_id).lease_expires_at
    assert queue.renew(isolated, lease, 3600)
    after = queue.load_job(isolated, job_id).lease_expires_at
    assert after - before > timedelta(minutes=50)


def _submit_big(sessions, url: str, n_trials: int) -> str:
    with sessions() as session:
        spec = TuneSpec(objective="energy", steps=4, n_trials=n_trials)
        return submit_job(session, optuna_storage(url), spec).id


def test_helpers_join_only_running_jobs_with_work_left_up_to_the_limit(isolated, db_url):
    small = _submit_big(isolated, db_url, 4)
    big = _submit_big(isolated, db_url, 50)
    assert queue.join_next(isolated, "h0", 60, max_helpers=2, min_free_trials=8) is None  # nothing running yet
    holder_small = queue.claim_next(isolated, "holder", 60)
    holder_big = queue.claim_next(isolated, "holder", 60)
    assert (holder_small.job_id, holder_big.job_id) == (small, big)
    first = queue.join_next(isolated, "h1", 60, max_helpers=2, min_free_trials=8)
    second = queue.join_next(isolated, "h2", 60, max_helpers=2, min_free_trials=8)
    assert first.job_id == second.job_id == big  # the small job has fewer than 8 trials left
    assert queue.join_next(isolated, "h3", 60, max_helpers=2, min_free_trials=8) is None  # the limit
    tags = queue.live_tags(isolated, big)
    assert tags == {queue.trial_tag(t) for t in (holder_big.token, first.token, second.token)}
    assert not tags & {holder_big.token, first.token, second.token}  # tags do not reveal the fencing tokens

    queue.leave(isolated, first)
    assert queue.join_next(isolated, "h3", 60, max_helpers=2, min_free_trials=8).job_id == big
    assert queue.renew_helper(isolated, second, 60)
    assert queue.finish(isolated, holder_big, queue.JobStatus.succeeded, result={})
    assert not queue.renew_helper(isolated, second, 60)  # the job stopped running: helpers stop too
    assert not queue.holder_alive(isolated, big)


def test_a_helper_whose_registration_lapsed_is_not_live(isolated, db_url):
    from mdmtune.service.db import JobHelper

    job_id = _submit_big(isolated, db_url, 50)
    holder = queue.claim_next(isolated, "holder", 60)
    helper = queue.join_next(isolated, "h", 60, max_helpers=1, min_free_trials=8)
    with isolated() as session:
        session.execute(
            update(JobHelper).where(JobHelper.token == helper.token).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    assert queue.live_tags(isolated, job_id) == {queue.trial_tag(holder.token)}
    other = queue.join_next(isolated, "h2", 60, max_helpers=1, min_free_trials=8)
    assert other.job_id == job_id  # the lapsed helper no longer counts against the limit
    assert queue.holder_alive(isolated, job_id)
    _lapse(isolated, job_id)
    assert not queue.holder_alive(isolated, job_id)
    assert queue.live_tags(isolated, job_id) == {queue.trial_tag(other.token)}
