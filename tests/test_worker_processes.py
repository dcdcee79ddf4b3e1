"""Real `mdmtune worker` processes on the real Postgres: a SIGKILLed worker's job is finished by another, N workers
run many jobs each exactly once, two workers share one job (and a killed helper's trials are re-run), and SIGTERM
gives the job back after the current batch.

Short leases (3 s, heartbeat 0.5 s) make a dead worker's lease lapse quickly; nothing asserts on time: every wait
polls the database for a state, with a generous limit that only guards against hanging forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy import select

from mdmtune.service.db import Job, make_engine, make_session_factory, optuna_storage
from mdmtune.service.migrations import upgrade
from mdmtune.service.workers import queue
from mdmtune.service.workers.jobs import submit_job
from mdmtune.service.workers.sharing import WORKER_ATTR
from mdmtune.tuning.spec import TuneSpec

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[1]
WAIT_LIMIT_S = 120


@pytest.fixture
def pg(postgres_db_url):
    upgrade(postgres_db_url)
    engine = make_engine(postgres_db_url)
    yield postgres_db_url, make_session_factory(engine), optuna_storage(postgres_db_url)
    engine.dispose()


@pytest.fixture
def workers(tmp_path):
    """Start `python -m mdmtune.cli.main worker` processes; kill whatever is left at the end."""
    started: list[subprocess.Popen] = []

    def start(url: str, worker_id: str, lease_seconds: float = 3) -> subprocess.Popen:
        env = dict(
            os.environ,
            PYTHONPATH=str(REPO),
            MDMTUNE_LEASE_SECONDS=str(lease_seconds),
            MDMTUNE_HEARTBEAT_SECONDS="0.5",
            MDMTUNE_POLL_SECONDS="0.2",
        )
        log = (tmp_path / f"{worker_id}.log").open("wb")
        cmd = [sys.executable, "-m", "mdmtune.cli.main", "worker", "--database-url", url, "--worker-id", worker_id]
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT_LIMIT_S
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def _submit(sessions, storage, spec: TuneSpec) -> Job:
    with sessions() as session:
        return submit_job(session, storage, spec)


def _trials(storage, study_name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study_name, storage=storage).get_trials()


def _assert_exact_and_unduplicated(trials, n_trials: int) -> None:
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == n_trials
    points = Counter((t.params["a"], t.params["b"]) for t in finished)
    assert max(points.values()) == 1, "a finished (a, b) point was evaluated twice"
    assert not [t for t in trials if t.state == TrialState.RUNNING]


def test_sigkilled_workers_job_is_finished_by_the_other_worker(pg, workers):
    url, sessions, storage = pg
    spec = TuneSpec(objective="energy", steps=8, n_trials=40, trials_per_batch=4, search_algorithm="random")
    job = _submit(sessions, storage, spec)
    procs = {name: workers(url, name) for name in ("worker-a", "worker-b")}

    holder = _wait_for(
        lambda: (j := queue.load_job(sessions, job.id)).trials_done >= 12 and j.worker_id, "the job to get going"
    )
    procs[holder].send_signal(signal.SIGKILL)
    procs[holder].wait()
    survivor = "worker-b" if holder == "worker-a" else "worker-a"

    done = _wait_for(lambda: (j := queue.load_job(sessions, job.id)).status == "succeeded" and j, "the job to finish")
    assert done.worker_id == survivor and done.attempt == 2
    assert done.trials_done == spec.trials
    trials = _trials(storage, job.study_name)
    _assert_exact_and_unduplicated(trials, spec.trials)
    baselines = Counter(t.user_attrs.get("baseline") for t in trials if t.state == TrialState.COMPLETE)
    assert (baselines["linear"], baselines["cos2"]) == (1, 1)
    assert procs[survivor].poll() is None  # still serving the queue


def test_many_jobs_on_several_worker_processes_each_run_exactly_once(pg, workers):
    url, sessions, storage = pg
    spec = TuneSpec(objective="energy", steps=4, n_trials=6, trials_per_batch=6, search_algorithm="random")
    jobs = [_submit(sessions, storage, spec.replace(seed=i)) for i in range(6)]
    for i in range(3):
        workers(url, f"worker-{i}", lease_seconds=30)  # no worker dies here: a long lease survives a loaded CPU

    def all_done() -> list[Job]:
        with sessions() as session:
            rows = session.scalars(select(Job)).all()
        return rows if all(row.status == "succeeded" for row in rows) else []

    rows = _wait_for(all_done, "every job to succeed")
    assert len(rows) == len(jobs)
    assert all(row.attempt == 1 for row in rows), "a job was claimed more than once"
    for row in rows:
        trials = _trials(storage, row.study_name)
        _assert_exact_and_unduplicated(trials, spec.trials)
        assert not [t for t in trials if t.state == TrialState.FAIL]


def test_sigterm_finishes_the_batch_and_gives_the_job_back(pg, workers):
    url, sessions, storage = pg
    spec = TuneSpec(objective="energy", steps=4, n_trials=10_000, trials_per_batch=4, search_algorithm="random")
    job = _submit(sessions, storage, spec)
    proc = workers(url, "worker-t")
    _wait_for(lambda: queue.load_job(sessions, job.id).trials_done >= 8, "the job to get going")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=WAIT_LIMIT_S) == 0
    back = queue.load_job(sessions, job.id)
    assert (back.status, back.lease_token, back.attempt) == ("queued", None, 1)
    trials = _trials(storage, job.study_name)
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.FAIL)]
    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(finished) == back.trials_done


def _names(trials, state: TrialState) -> Counter:
    return Counter((t.user_attrs.get(WORKER_ATTR) or {}).get("name") for t in trials if t.state == state)


def test_two_workers_share_one_job_and_a_killed_helpers_trials_are_rerun(pg, workers):
    url, sessions, storage = pg
    spec = TuneSpec(objective="energy", steps=8, n_trials=48, trials_per_batch=4, search_algorithm="random")
    job = _submit(sessions, storage, spec)
    procs = {name: workers(url, name) for name in ("worker-a", "worker-b")}

    def both_working() -> bool:
        names = _names(_trials(storage, job.study_name), TrialState.COMPLETE)
        return len(names) == 2 and min(names.values()) >= 4

    _wait_for(both_working, "both workers to finish trials of the one job")
    holder = queue.load_job(sessions, job.id).worker_id
    helper = "worker-b" if holder == "worker-a" else "worker-a"
    procs[helper].send_signal(signal.SIGKILL)
    procs[helper].wait()

    done = _wait_for(lambda: (j := queue.load_job(sessions, job.id)).status == "succeeded" and j, "the job to finish")
    assert (done.worker_id, done.attempt) == (holder, 1)  # the lease holder never lost the job
    trials = _trials(storage, job.study_name)
    _assert_exact_and_unduplicated(trials, spec.trials)
    assert set(_names(trials, TrialState.COMPLETE)) == {holder, helper}
    for failed in (t for t in trials if t.state == TrialState.FAIL):
        # a surplus ask, or a trial the killed helper held: tagged, or untagged when it died inside `ask`
        owner = (failed.user_attrs.get(WORKER_ATTR) or {}).get("name", helper)
        assert failed.user_attrs.get("surplus") or owner == helper
