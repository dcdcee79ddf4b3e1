"""Database faults in the middle of a job, on the real Postgres: the service's connections are terminated
(`pg_terminate_backend`, what a Postgres restart or a proxy dropping idle connections does to a worker) again and
again while two workers run one job. The job must still succeed, with exactly the requested trials finished, the
baselines once each, and no point evaluated twice; a fault is never a reason to fail a job."""

from __future__ import annotations

import threading
import time

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy import text

from mdmtune.service.db import make_engine, make_session_factory
from mdmtune.service.db.session import optuna_storage
from mdmtune.service.settings import Settings
from mdmtune.service.workers import queue
from mdmtune.service.workers.faults import is_transient, retry_transient
from mdmtune.service.workers.jobs import submit_job
from mdmtune.service.workers.runner import Worker
from mdmtune.tuning.spec import TuneSpec

FINAL = ("succeeded", "failed", "cancelled")


def _terminate_others(admin, database: str) -> int:
    """pg_terminate_backend every connection to `database` but this one; how many were terminated."""
    rows = admin.execute(
        text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"),
        {"db": database},
    ).all()
    return sum(1 for (ok,) in rows if ok)


def test_terminated_connections_mid_job_lose_and_duplicate_no_trial(module_postgres_url):
    url = module_postgres_url
    settings = Settings(
        database_url=url, lease_seconds=4, poll_seconds=0.05, help_min_free_trials=2, max_helpers_per_job=2
    )
    engine = make_engine(url)
    sessions, storage = make_session_factory(engine), optuna_storage(url)
    spec = TuneSpec(objective="energy", steps=8, n_trials=300, trials_per_batch=4, weight_a=2.0, weight_b=0.5)
    with sessions() as session:
        job = submit_job(session, storage, spec)
    stop = threading.Event()
    workers = [Worker(settings, stop_event=stop, worker_id=f"fault-worker-{n}") for n in range(2)]
    threads = [threading.Thread(target=w.run_forever, daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    database = url.rsplit("/", 1)[1]
    kills, rounds = 0, 0
    admin_engine = make_engine(url)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            time.sleep(0.4)
            with admin_engine.connect() as admin:
                status = admin.execute(text("SELECT status FROM jobs WHERE id = :id"), {"id": job.id}).scalar()
                if status in FINAL:
                    break
                if rounds < 8:
                    kills += _terminate_others(admin, database)
                    rounds += 1
                admin.commit()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        admin_engine.dispose()
        for worker in workers:  # close the pools now, not in a garbage collector's finalizer after the test
            worker.engine.dispose()
            worker.storage.engine.dispose()
    done = retry_transient(lambda: queue.load_job(sessions, job.id), what="read", give_up_after_s=10)
    assert kills >= 8, "the job ended before the faults could hit it; give it more trials"
    assert done.status == "succeeded", done.error
    study = optuna.load_study(study_name=job.study_name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == done.trials_done == spec.trials  # none lost, none counted twice
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    baselines = sorted(t.user_attrs["baseline"] for t in finished if "baseline" in t.user_attrs)
    assert baselines == ["cos2", "linear"], [(t.number, t.state.name) for t in trials if "baseline" in t.user_attrs]
    points = [(t.params["a"], t.params["b"]) for t in finished]
    assert len(set(points)) == len(points)  # a re-enqueued point was finished once
    assert done.result["n_trials"] == spec.trials and len(done.result["trials"]) >= spec.trials
    engine.dispose()


def test_errors_are_classified_by_what_they_say_about_the_database(module_postgres_url):
    engine = make_engine(module_postgres_url)
    with engine.connect() as mine, make_engine(module_postgres_url).connect() as other:
        pid = mine.execute(text("SELECT pg_backend_pid()")).scalar()
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.commit()
        with pytest.raises(Exception) as dropped:
            mine.execute(text("SELECT 1"))
    assert is_transient(dropped.value)
    with engine.connect() as first, engine.connect() as second:  # a real serialization failure (SQLSTATE 40001)
        first.execute(text("CREATE TABLE IF NOT EXISTS fault_probe (id int PRIMARY KEY, n int)"))
        first.execute(text("INSERT INTO fault_probe VALUES (1, 0) ON CONFLICT DO NOTHING"))
        first.commit()
        for conn in (first, second):
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"))
            conn.execute(text("SELECT n FROM fault_probe WHERE id = 1")).scalar()
        first.execute(text("UPDATE fault_probe SET n = n + 1 WHERE id = 1"))
        first.commit()
        with pytest.raises(Exception) as serialization:
            second.execute(text("UPDATE fault_probe SET n = n + 1 WHERE id = 1"))
    assert is_transient(serialization.value), serialization.value
    with engine.connect() as conn, pytest.raises(Exception) as bad_sql:
        conn.execute(text("SELECT no_such_column FROM jobs"))
    assert not is_transient(bad_sql.value)
    assert not is_transient(ValueError("a bad request"))
    wrapped = optuna.exceptions.StorageInternalError("commit failed")
    wrapped.__cause__ = dropped.value
    assert is_transient(wrapped)
    engine.dispose()
