"""A worker running real energy jobs in this process, on SQLite and Postgres: success, cancel, timeout, resume."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy import update

from mdmtune.service.db import Job, make_engine, make_session_factory, optuna_storage
from mdmtune.service.db.models import utcnow
from mdmtune.service.settings import Settings
from mdmtune.service.workers import Worker, queue
from mdmtune.service.workers.jobs import list_trials, submit_job
from mdmtune.service.workers.runner import Outcome
from mdmtune.service.workers.sharing import TaggedStudy
from mdmtune.tuning.search import distributions
from mdmtune.tuning.spec import TuneSpec


@pytest.fixture
def env(db_url):
    engine = make_engine(db_url)
    settings = Settings(database_url=db_url, lease_seconds=30, poll_seconds=0.1)
    yield settings, make_session_factory(engine), optuna_storage(db_url)
    engine.dispose()


def _submit(env, spec: TuneSpec, **kwargs) -> Job:
    _settings, sessions, storage = env
    with sessions() as session:
        return submit_job(session, storage, spec, **kwargs)


def _run_job(settings: Settings, job_id: str) -> Outcome:
    """Claim exactly this job (other modules' jobs may sit in the shared Postgres database) and run it."""
    worker = Worker(settings, worker_id="test-worker")
    with worker.sessions() as session:
        session.execute(update(Job).where(Job.id != job_id, Job.status == "queued").values(status="cancelled"))
        session.commit()
    return worker.run_once()


def _run_and_cancel_when(settings: Settings, sessions, job_id: str, ready: Callable[[Job], bool]) -> Outcome:
    """Run the job here while another thread requests its cancel once `ready(row)` holds (not if it ended first)."""

    def cancel_when_ready() -> None:
        while not ready(row := queue.load_job(sessions, job_id)):
            if row.status in ("succeeded", "failed", "cancelled"):
                return
            time.sleep(0.02)
        with sessions() as session:
            session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
            session.commit()

    canceller = threading.Thread(target=cancel_when_ready)
    canceller.start()
    outcome = _run_job(settings, job_id)
    canceller.join()
    return outcome


def _finished(storage, study_name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=study_name, storage=storage)
    return study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))


def test_energy_job_succeeds_with_exactly_the_requested_trials(env):
    settings, sessions, storage = env
    job = _submit(env, TuneSpec(objective="energy", steps=8, n_trials=16, weight_a=2.0, weight_b=0.5))
    assert _run_job(settings, job.id) == Outcome.succeeded
    done = queue.load_job(sessions, job.id)
    finished = _finished(storage, job.study_name)
    assert (done.status, done.trials_done, len(finished)) == ("succeeded", 16, 16)
    best = min((t for t in finished if t.value is not None), key=lambda t: t.value)
    assert done.result["best"]["a"] == pytest.approx(best.params["a"])
    assert done.result["best"]["score"] == pytest.approx(best.value)
    assert done.best_params == pytest.approx(best.params)
    assert {t.user_attrs.get("baseline") for t in finished} >= {"linear", "cos2"}
    assert [row["number"] for row in list_trials(storage, job.study_name)] == sorted(t.number for t in finished)
    assert done.lease_token is None and done.finished_at is not None


def test_cancel_stops_a_running_job_and_keeps_its_trials(env):
    settings, sessions, storage = env
    spec = TuneSpec(objective="energy", steps=4, n_trials=10_000, search_algorithm="random", trials_per_batch=4)
    job = _submit(env, spec)

    def cancel_once_started() -> None:
        while queue.load_job(sessions, job.id).trials_done < 8:
            time.sleep(0.05)
        with sessions() as session:
            session.execute(update(Job).where(Job.id == job.id).values(cancel_requested=True))
            session.commit()

    canceller = threading.Thread(target=cancel_once_started)
    canceller.start()
    assert _run_job(settings, job.id) == Outcome.cancelled
    canceller.join()
    done = queue.load_job(sessions, job.id)
    assert done.status == "cancelled"
    assert 8 <= done.trials_done < spec.trials
    assert len(_finished(storage, job.study_name)) == done.trials_done


def test_timed_out_job_fails_with_the_reason_and_keeps_its_trials(env):
    settings, sessions, storage = env
    spec = TuneSpec(objective="energy", steps=4, n_trials=10_000, search_algorithm="random", trials_per_batch=4)
    job = _submit(env, spec, timeout_seconds=3600)

    def shorten_timeout_once_started() -> None:
        while queue.load_job(sessions, job.id).trials_done < 8:
            time.sleep(0.05)
        with sessions() as session:
            session.execute(update(Job).where(Job.id == job.id).values(timeout_seconds=0.001))
            session.commit()

    shortener = threading.Thread(target=shorten_timeout_once_started)
    shortener.start()
    assert _run_job(settings, job.id) == Outcome.failed
    shortener.join()
    done = queue.load_job(sessions, job.id)
    assert done.status == "failed" and "timed out" in done.error
    assert done.trials_done >= 8
    assert len(_finished(storage, job.study_name)) == done.trials_done


def test_reclaimed_job_fails_stale_running_trials_and_finishes_the_count(env):
    """A dead worker's RUNNING trial is told FAIL and re-run; the finished count is still exactly n_trials."""
    settings, sessions, storage = env
    spec = TuneSpec(objective="energy", steps=6, n_trials=12)
    job = _submit(env, spec)
    dead = queue.claim_next(sessions, "dead-worker", 60)
    assert dead.job_id == job.id
    study = TaggedStudy(job.study_name, storage, queue.trial_tag(dead.token), "dead-worker")
    orphan = study.ask(distributions(spec))  # the dead worker's trial, left RUNNING: the enqueued linear baseline
    with sessions() as session:
        expired = utcnow() - timedelta(seconds=1)
        session.execute(update(Job).where(Job.id == job.id).values(lease_expires_at=expired))
        session.commit()
    assert _run_job(settings, job.id) == Outcome.succeeded
    trials = optuna.load_study(study_name=job.study_name, storage=storage).get_trials()
    assert trials[orphan.number].state == TrialState.FAIL
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 12
    baselines = [t.user_attrs.get("baseline") for t in finished if t.user_attrs.get("baseline")]
    assert sorted(baselines) == ["cos2", "linear"]
    assert queue.load_job(sessions, job.id).attempt == 2


def test_failed_job_keeps_the_error(env):
    """An objective that cannot be built (several step counts in one service job) fails the job with its reason."""
    settings, sessions, _storage = env
    job = _submit(env, TuneSpec(objective="energy", steps=4, n_trials=4))
    with sessions() as session:
        request = dict(job.request, steps=[4, 8])
        session.execute(update(Job).where(Job.id == job.id).values(request=request))
        session.commit()
    assert _run_job(settings, job.id) == Outcome.failed
    done = queue.load_job(sessions, job.id)
    assert done.status == "failed" and done.error.startswith("steps:")


def test_job_whose_workers_keep_dying_fails_after_max_attempts(env):
    settings, sessions, _storage = env
    job = _submit(env, TuneSpec(objective="energy", steps=4, n_trials=4))
    for _ in range(2):  # two workers claim it and die
        assert queue.claim_next(sessions, "dying", 60).job_id == job.id
        with sessions() as session:
            expired = utcnow() - timedelta(seconds=1)
            session.execute(update(Job).where(Job.id == job.id).values(lease_expires_at=expired))
            session.commit()
    assert _run_job(settings.model_copy(update={"max_attempts": 2}), job.id) == Outcome.failed
    done = queue.load_job(sessions, job.id)
    assert done.status == "failed" and "after 2 attempts" in done.error and done.attempt == 3


def _quality_rows(settings: Settings, sessions) -> tuple[str, str]:
    """A tiny real native checkpoint and an infill eval set in the artifact folder, with their rows."""
    from apiartifacts import stored_infill_rows

    return stored_infill_rows(sessions, settings.resolved_artifact_dir)


def test_quality_jobs_share_one_loaded_checkpoint_and_keep_their_scores(migrated_sqlite_url, tmp_path):
    settings = Settings(database_url=migrated_sqlite_url, data_dir=tmp_path, device="cpu", lease_seconds=30)
    engine = make_engine(migrated_sqlite_url)
    sessions, storage = make_session_factory(engine), optuna_storage(migrated_sqlite_url)
    checkpoint_id, eval_set_id = _quality_rows(settings, sessions)
    spec = TuneSpec(objective="quality", steps=1, n_trials=3, metric="exact_match", trials_per_batch=3)
    worker = Worker(settings, worker_id="quality-worker")
    jobs = []
    for seed in (0, 1):
        with sessions() as session:
            job = submit_job(
                session,
                storage,
                spec.replace(seed=seed),
                checkpoint_id=checkpoint_id,
                eval_set_id=eval_set_id,
                artifact_dir=settings.resolved_artifact_dir,
            )
        jobs.append(job)
        assert worker.run_once() == Outcome.succeeded, queue.load_job(sessions, job.id).error
    assert len(worker.objectives._models) == 1  # loaded once, by sha256, for both jobs
    for job in jobs:
        done = queue.load_job(sessions, job.id)
        assert done.status == "succeeded" and done.trials_done == 3
        assert done.result["best"]["ci"] is not None and done.nfe > 0
        assert (settings.resolved_artifact_dir / "score-cache" / f"{job.id}.jsonl").stat().st_size > 0
    engine.dispose()


def test_cancel_stops_a_job_in_its_confirm_phase_within_one_model_batch(migrated_sqlite_url, tmp_path):
    """The search is only the two baselines; the confirm split is large and scored in small batches. A cancel sent
    once the job is confirming ends it cancelled, with no result, instead of running the confirm split out."""
    from apiartifacts import stored_infill_rows

    settings = Settings(database_url=migrated_sqlite_url, data_dir=tmp_path, device="cpu", lease_seconds=30)
    engine = make_engine(migrated_sqlite_url)
    sessions, storage = make_session_factory(engine), optuna_storage(migrated_sqlite_url)
    records = [{"id": i, "masked": f"{i % 97}+{i % 89}=____", "answer": "0000"} for i in range(1500)]
    root = settings.resolved_artifact_dir
    ids = stored_infill_rows(sessions, root, records, name="big")
    spec = TuneSpec(
        objective="quality",
        steps=4,
        n_trials=2,
        metric="exact_match",
        confirm_fraction=0.9,
        batch_size=4,
        replicates=4,
        subset_size=8,
    )
    with sessions() as session:
        job = submit_job(session, storage, spec, checkpoint_id=ids[0], eval_set_id=ids[1], artifact_dir=root)
    seen_confirming = threading.Event()

    def confirming(row: Job) -> bool:
        if row.status == "running" and row.trials_done >= spec.trials:
            seen_confirming.set()
        return seen_confirming.is_set()

    outcome = _run_and_cancel_when(settings, sessions, job.id, confirming)
    done = queue.load_job(sessions, job.id)
    assert seen_confirming.is_set()
    assert (outcome, done.status, done.result) == (Outcome.cancelled, "cancelled", None), done.error
    assert done.trials_done == spec.trials
    engine.dispose()


def test_a_job_that_cannot_start_fails_once_with_its_reason(env):
    """A row the API can no longer write (a timeout of 1e308 s, from before timeouts were bounded) once made every
    claim raise before the job's error handling, so the job was claimed again after each lease, for ever."""
    settings, sessions, _storage = env
    job = _submit(env, TuneSpec(objective="energy", steps=4, n_trials=4))
    with sessions() as session:
        session.execute(update(Job).where(Job.id == job.id).values(timeout_seconds=1e308))
        session.commit()
    assert _run_job(settings, job.id) == Outcome.failed
    done = queue.load_job(sessions, job.id)
    assert done.status == "failed" and done.attempt == 1 and "Overflow" in done.error, done.error
    assert Worker(settings, worker_id="second").run_once() in (None, Outcome.succeeded, Outcome.failed)
    assert queue.load_job(sessions, job.id).attempt == 1  # not claimed again


def test_a_helper_that_fails_on_a_job_does_not_rejoin_it(migrated_sqlite_url, tmp_path, caplog):
    """The eval set's file disappears after the lease holder loaded it: an idle worker that joins as a helper fails
    to load it. It must not rejoin that job at every poll (once: 1,052 tracebacks in 35 s)."""
    import logging

    from apiartifacts import native_folder

    from mdmtune.data.evalsets import write_eval_set
    from mdmtune.service.db.models import Checkpoint, EvalSetRow

    caplog.set_level(logging.INFO, logger="mdmtune.service.workers.runner")
    settings = Settings(
        database_url=migrated_sqlite_url,
        data_dir=tmp_path,
        device="cpu",
        lease_seconds=30,
        poll_seconds=0.05,
        help_min_free_trials=1,
    )
    engine = make_engine(migrated_sqlite_url)
    sessions, storage = make_session_factory(engine), optuna_storage(migrated_sqlite_url)
    root = settings.resolved_artifact_dir
    native_folder(root / "ckpt", max_len=16)
    records = [{"id": i, "masked": f"{i % 97}+{i % 89}=____", "answer": "0000"} for i in range(400)]
    written = write_eval_set(records, root / "evals" / "set.jsonl")
    with sessions() as session:
        checkpoint = Checkpoint(sha256="e" * 64, format="native", size=1, path="ckpt")
        eval_set = EvalSetRow(sha256=written.sha256, record_count=len(records), kind="infill", path="evals/set.jsonl")
        session.add_all([checkpoint, eval_set])
        session.commit()
        ids = (checkpoint.id, eval_set.id)
    spec = TuneSpec(objective="quality", steps=4, n_trials=2000, metric="exact_match", trials_per_batch=2)
    with sessions() as session:
        job = submit_job(session, storage, spec, checkpoint_id=ids[0], eval_set_id=ids[1], artifact_dir=root)
    holder = threading.Thread(target=_run_job, args=(settings, job.id))
    holder.start()
    while queue.load_job(sessions, job.id).trials_done < 2:
        time.sleep(0.05)
    (root / "evals" / "set.jsonl").unlink()
    stop = threading.Event()
    helper = Worker(settings, stop_event=stop, worker_id="helper")
    helping = threading.Thread(target=helper.run_forever)
    helping.start()
    time.sleep(3.0)
    stop.set()
    helping.join(timeout=60)
    with sessions() as session:
        session.execute(update(Job).where(Job.id == job.id).values(cancel_requested=True))
        session.commit()
    holder.join(timeout=120)
    joins = [r for r in caplog.records if r.getMessage() == f"worker helper helps with job {job.id}"]
    assert len(joins) == 1, len(joins)
    assert job.id in helper._cannot_help
    assert queue.load_job(sessions, job.id).status == "cancelled"
    engine.dispose()


def test_a_hostile_code_job_cannot_wedge_the_worker_and_a_cancel_lands(migrated_sqlite_url, tmp_path):
    """Every record's `test` (the tenant's code) plants a FIFO and a symlink where the old sandbox kept its output,
    tries kill(-1) and then sleeps: the worker stays responsive, the cancel lands, nothing is left behind."""
    from apiartifacts import native_folder

    from mdmtune.data.evalsets import write_eval_set
    from mdmtune.service.db.models import Checkpoint, EvalSetRow

    settings = Settings(database_url=migrated_sqlite_url, data_dir=tmp_path, device="cpu", lease_seconds=30)
    engine = make_engine(migrated_sqlite_url)
    sessions, storage = make_session_factory(engine), optuna_storage(migrated_sqlite_url)
    root = settings.resolved_artifact_dir
    native_folder(root / "ckpt", max_len=16)
    hostile = (
        "import os, time\nos.mkfifo('output.log')\nos.symlink('/etc/shadow', 'stdout.log')\n"
        "try:\n    os.kill(-1, 9)\nexcept OSError:\n    pass\ntime.sleep(3600)\n"
    )
    records = [{"id": i, "prompt": f"{i}+{i}=", "answer": str(2 * i), "test": hostile} for i in range(6)]
    written = write_eval_set(records, root / "evals" / "hostile.jsonl")
    with sessions() as session:
        checkpoint = Checkpoint(sha256="e" * 64, format="native", size=1, path="ckpt")
        eval_set = EvalSetRow(
            sha256=written.sha256, record_count=len(records), kind="completion", path="evals/hostile.jsonl"
        )
        session.add_all([checkpoint, eval_set])
        session.commit()
        ids = (checkpoint.id, eval_set.id)
    spec = TuneSpec(objective="quality", steps=2, n_trials=50, metric="pass_at_1", gen_length=4, trials_per_batch=2)
    with sessions() as session:
        job = submit_job(session, storage, spec, checkpoint_id=ids[0], eval_set_id=ids[1], artifact_dir=root)
    outcome = _run_and_cancel_when(settings, sessions, job.id, lambda row: row.status == "running")
    done = queue.load_job(sessions, job.id)
    assert (outcome, done.status) == (Outcome.cancelled, "cancelled"), done.error
    assert done.trials_done < spec.trials
    engine.dispose()
