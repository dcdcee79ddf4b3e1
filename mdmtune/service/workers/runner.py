"""`Worker`: claims one job at a time and runs it to an end state, holding its lease by heartbeat.

One job, under the lease, is the library's lifecycle (mdmtune.tuning.lifecycle.run_job: prepare, search, finish),
to which this worker adds only:
1. the study: created with its baselines when the job was submitted; `create_study` loads it, and would create it
   with the baselines only if it were missing (under the lease, so only one worker can do that);
2. the RUNNING trials of workers that are gone (an earlier lease holder, a dead helper) are told FAIL and
   re-enqueued (`sharing.reap_stale_trials`, from should_stop), so no trial is counted twice and none is lost;
3. `should_stop` (polled between model batches) checks: lease lost, SIGTERM, cancel requested, timeout; an
   interrupted trial batch is told FAIL and re-enqueued by the library; progress is written fenced;
4. the end: succeeded (the result), cancelled, failed (error kept; the trials stay in the study), or on SIGTERM
   the lease is released and the job is queued again for the next worker. Every write is fenced.

A worker with no job to claim may help with a running one (`help_once`): same study, its own sampler seed, no
writes on the job row.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mdmtune.data.jsonsafe import to_jsonable
from mdmtune.errors import MdmtuneError
from mdmtune.service.db.models import Job, JobStatus, utcnow
from mdmtune.service.db.session import make_engine, make_session_factory, optuna_storage
from mdmtune.service.settings import Settings
from mdmtune.service.workers import queue
from mdmtune.service.workers.faults import backoff_delays, is_transient, retry_transient
from mdmtune.service.workers.objectives import ObjectiveCache
from mdmtune.service.workers.sharing import TaggedStudy, reap_stale_trials
from mdmtune.tuning.spec import TuneSpec

if TYPE_CHECKING:
    import optuna

    from mdmtune.tuning.frontier import FrontierResult
    from mdmtune.tuning.lifecycle import JobHooks
    from mdmtune.tuning.result import TuneResult
    from mdmtune.tuning.search import Progress

log = logging.getLogger(__name__)
CANCEL_CHECK_S = 0.5
T = TypeVar("T")


class Outcome(str, Enum):
    """How a claimed job ended for this worker."""

    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    released = "released"  # SIGTERM: given back, queued again
    helped = "helped"  # worked on a job held by another worker, until it needed no more help
    lost = "lost"  # the lease was taken over; this worker wrote nothing more


class _Heartbeat(threading.Thread):
    """Renews the lease (or a helper's registration) every `period` seconds until stopped; notes when it is lost."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        lease: queue.Lease,
        lease_s: float,
        period: float,
        renew: Callable[[sessionmaker[Session], queue.Lease, float], bool] = queue.renew,
    ) -> None:
        super().__init__(name=f"heartbeat-{lease.job_id[:8]}", daemon=True)
        self.sessions, self.lease, self.lease_s, self.period, self.renew = sessions, lease, lease_s, period, renew
        self.done = threading.Event()
        self.lost = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.period):
            try:
                if not self.renew(self.sessions, self.lease, self.lease_s):
                    self.lost.set()
                    return
            except Exception:  # a database hiccup: try again next period; the lease is long enough for a miss
                log.warning("lease renewal failed for job %s", self.lease.job_id, exc_info=True)


@dataclass
class _Stop:
    """should_stop() for run_search, remembering why it said stop."""

    worker: Worker
    lease: queue.Lease
    heartbeat: _Heartbeat
    deadline: float
    helping: bool = False
    """A helper also stops when the lease holder is gone: the next lease holder reaps, resumes and finalizes."""
    study: TaggedStudy | None = None
    """Set once the study is open: the lease holder reaps dead workers' trials from here, between batches and
    while it waits for helpers' trials (run_search calls should_stop in both places)."""
    reason: Outcome | None = None
    _next_cancel_check: float = 0.0
    _next_reap: float = 0.0

    def __call__(self) -> bool:
        self.reason = self.worker.retrying(self._check, "should_stop")
        return self.reason is not None

    def _check(self) -> Outcome | None:
        self._reap()
        return self._reason()

    def _reap(self) -> None:
        now = time.monotonic()
        if self.study is None or now < self._next_reap:
            return
        self._next_reap = now + self.worker.settings.lease_seconds / 2
        live = queue.live_tags(self.worker.sessions, self.lease.job_id)
        reap_stale_trials(self.study, live, untagged_grace_s=self.worker.settings.lease_seconds)

    def _reason(self) -> Outcome | None:
        if self.heartbeat.lost.is_set():
            return Outcome.lost
        now = time.monotonic()
        if now >= self._next_cancel_check:
            self._next_cancel_check = now + CANCEL_CHECK_S
            if self.helping and not queue.holder_alive(self.worker.sessions, self.lease.job_id):
                return Outcome.lost
            job = queue.load_job(self.worker.sessions, self.lease.job_id)
            if job.cancel_requested:
                return Outcome.cancelled
            self.deadline = self.worker._deadline(job)  # an operator may change a running job's timeout
        if time.time() >= self.deadline:
            return Outcome.failed
        if self.worker.stop_event.is_set():
            return Outcome.released
        return None


class Worker:
    """A job loop over one database. Thread-safe to run several in one process (each its own `Worker`)."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        stop_event: threading.Event | None = None,
        worker_id: str | None = None,
    ) -> None:
        from mdmtune.service.migrations import require_current_schema

        self.settings = settings
        if settings.allow_weak_sandbox:  # the sandbox reads the operator's choice from the environment
            from mdmtune.sandbox import ALLOW_WEAK_ENV

            os.environ[ALLOW_WEAK_ENV] = "1"
        url = settings.resolved_database_url
        require_current_schema(url)
        self.engine = engine if engine is not None else make_engine(url)
        self.sessions = make_session_factory(self.engine)
        self.storage = optuna_storage(url)
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self.worker_id = worker_id or settings.worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.objectives = ObjectiveCache(settings)
        self._cannot_help: set[str] = set()
        """Jobs this worker failed to help with for a reason other than a database fault."""

    def run_forever(self) -> None:
        """Claim and run jobs until stop_event is set; sleep poll_seconds when the queue is empty."""
        log.info("worker %s started", self.worker_id)
        failures, delay = 0, backoff_delays(first=self.settings.poll_seconds, cap=30.0)
        while not self.stop_event.is_set():
            try:
                ran = self.run_once() or self.help_once()
                failures = 0
            except Exception:  # the database went away for a moment: back off and try again, never die on it
                log.exception("worker %s: claim failed", self.worker_id)
                ran, failures = None, failures + 1
            if ran is None:
                self.stop_event.wait(delay(failures - 1) if failures else self.settings.poll_seconds)
        log.info("worker %s stopped", self.worker_id)

    def run_once(self) -> Outcome | None:
        """Claim one job and run it to this worker's end of it; None when nothing was claimable."""
        lease = queue.claim_next(self.sessions, self.worker_id, self.settings.lease_seconds)
        if lease is None:
            return None
        log.info("worker %s claimed job %s (attempt %d)", self.worker_id, lease.job_id, lease.attempt)
        return self.run_job(lease)

    def run_job(self, lease: queue.Lease) -> Outcome:
        """Run a claimed job; every write carries the lease token."""
        heartbeat = _Heartbeat(
            self.sessions, lease, self.settings.lease_seconds, self.settings.resolved_heartbeat_seconds
        )
        heartbeat.start()
        try:
            return self._run_job(lease, heartbeat)
        finally:
            heartbeat.done.set()
            heartbeat.join()

    def _run_job(self, lease: queue.Lease, heartbeat: _Heartbeat) -> Outcome:
        """Everything a job can raise ends here, once: a passing database fault gives the job back to the queue
        (its finished trials stay in the study), anything else fails it with the reason (never a claim loop)."""
        try:
            job = self.retrying(lambda: queue.load_job(self.sessions, lease.job_id), "load job")
            if lease.attempt > self.settings.max_attempts:
                error = f"given up after {lease.attempt - 1} attempts: its workers died or were stopped running it"
                written = queue.finish(self.sessions, lease, JobStatus.failed, error=error)
                return Outcome.failed if written else Outcome.lost
            stop = _Stop(self, lease, heartbeat, deadline=self._deadline(job))
            return self._search_and_finish(job, lease, stop)
        except Exception as error:
            if is_transient(error):
                log.warning("job %s: database fault, giving the job back: %s", lease.job_id, error)
                return self._give_back(lease)
            log.exception("job %s failed", lease.job_id)
            # what the job's owner reads; the traceback is in the worker's log
            message = str(error) if isinstance(error, MdmtuneError) else f"{type(error).__name__}: {error}"
            written = self.retrying(
                lambda: queue.finish(self.sessions, lease, JobStatus.failed, error=message), "fail job"
            )
            return Outcome.failed if written else Outcome.lost

    def retrying(self, action: Callable[[], T], what: str) -> T:
        """`action` retried with backoff through passing database faults, for up to half a lease."""
        return retry_transient(action, what=what, give_up_after_s=self.settings.lease_seconds / 2)

    def _give_back(self, lease: queue.Lease) -> Outcome:
        """Queue the job again, not counting this claim as a death; if even that cannot be written, its lease
        lapses and the next claim resumes it all the same."""
        try:
            self.retrying(lambda: queue.release(self.sessions, lease, count_attempt=False), "give job back")
        except Exception:
            log.warning("job %s: could not give it back; its lease will lapse", lease.job_id, exc_info=True)
        return Outcome.released

    def help_once(self) -> Outcome | None:
        """Join a running job's study beside its lease holder (no job to claim); None when none needs help.

        A helper asks and tells trials with its own sampler seed and writes nothing on the job row; it stops when
        the study holds the requested trials, the job stops running, it is cancelled, or SIGTERM."""
        settings = self.settings
        if settings.max_helpers_per_job < 1:
            return None
        helper = queue.join_next(
            self.sessions,
            self.worker_id,
            settings.lease_seconds,
            settings.max_helpers_per_job,
            settings.help_min_free_trials,
            exclude=self._cannot_help,
        )
        if helper is None:
            return None
        log.info("worker %s helps with job %s", self.worker_id, helper.job_id)
        heartbeat = _Heartbeat(
            self.sessions, helper, settings.lease_seconds, settings.resolved_heartbeat_seconds, queue.renew_helper
        )
        heartbeat.start()
        try:
            self._help(helper, heartbeat)
        except Exception as error:  # a helper's failure is not the job's: the holder carries on (and reaps its trials)
            log.exception("worker %s: helping with job %s failed", self.worker_id, helper.job_id)
            if not is_transient(error):
                self._cannot_help.add(helper.job_id)  # the same error would come back: do not rejoin in a loop
        finally:
            heartbeat.done.set()
            heartbeat.join()
            queue.leave(self.sessions, helper)
        return Outcome.helped

    def _help(self, helper: queue.Lease, heartbeat: _Heartbeat) -> None:
        """Only the search step of the job's life, on its shared study, with a sampler seed of its own."""
        from mdmtune.tuning.lifecycle import JobHooks, prepare, search

        job = queue.load_job(self.sessions, helper.job_id)
        spec = TuneSpec.from_mapping(job.request)
        prepared = prepare(spec, self.objectives.inputs(spec, job, self.sessions, helper=True))
        study = TaggedStudy(job.study_name, self.storage, queue.trial_tag(helper.token), self.worker_id)
        stop = _Stop(self, helper, heartbeat, deadline=self._deadline(job), helping=True)
        seed = (spec.seed + 1000 + int(helper.token[:6], 16)) % 2**32  # a distinct sampler seed per helper
        search(prepared, study, JobHooks(should_stop=stop, worker_seed=lambda _study: seed))

    def _deadline(self, job: Job) -> float:
        """The job's timeout counts from its first claim, across resumes."""
        limit = job.timeout_seconds if job.timeout_seconds is not None else self.settings.job_timeout_seconds
        started = job.started_at or utcnow()
        return (started + timedelta(seconds=limit)).timestamp()

    def _search_and_finish(self, job: Job, lease: queue.Lease, stop: _Stop) -> Outcome:
        """The library's job lifecycle (prepare, search, finish) under the lease: this worker adds the job's tagged
        study, the resume seed, fenced progress and the stop check; the result is written fenced."""
        from mdmtune.tuning.lifecycle import Stopped, run_job

        spec = TuneSpec.from_mapping(job.request)
        self._refuse_without_sandbox(spec, job)
        inputs = self.retrying(lambda: self.objectives.inputs(spec, job, self.sessions), "read artifacts")
        hooks = self._hooks(spec, lease, stop)
        end = run_job(spec, inputs, lambda one: self._open_study(one, job, lease, stop), hooks)
        if isinstance(end, Stopped):
            trials_done = job.trials_done if end.trials_done is None else end.trials_done
            return self._stopped(job, lease, stop.reason, trials_done=trials_done)
        return self._succeed(job, lease, stop, end)

    def _open_study(self, spec: TuneSpec, job: Job, lease: queue.Lease, stop: _Stop) -> TaggedStudy:
        """The job's study (created with its baselines at submit; created here only if missing, under the lease),
        tagged with this worker; from now on should_stop reaps what dead workers left RUNNING in it."""
        from mdmtune.tuning.search import create_study

        create_study(spec, self.storage, job.study_name)
        stop.study = TaggedStudy(job.study_name, self.storage, queue.trial_tag(lease.token), self.worker_id)
        return stop.study

    def _hooks(self, spec: TuneSpec, lease: queue.Lease, stop: _Stop) -> JobHooks:
        """Progress written under the lease (a lost write means a lost lease), the stop check, the resume seed."""
        from mdmtune.tuning.lifecycle import JobHooks
        from mdmtune.tuning.search import study_nfe

        def fenced(what: str, **values: object) -> None:
            if not self.retrying(lambda: queue.fenced_update(self.sessions, lease, **values), what):
                stop.heartbeat.lost.set()

        def progress(p: Progress) -> None:
            fenced(
                "progress",
                trials_done=p.trials_done,
                nfe=study_nfe(stop.study),  # every worker's and every earlier run's, not only this run's
                best_value=_finite_or_none(p.best_value),
                best_params=p.best_params,
            )

        def on_budget(done: int, nfe: int) -> None:  # a frontier job's progress counts whole budgets
            fenced("progress", trials_done=done * spec.trials, nfe=nfe)

        return JobHooks(
            progress=progress,
            should_stop=stop,
            worker_seed=lambda study: self._resume_seed(spec.seed, lease, study),
            on_budget=on_budget,
            finish_when_stopped=False,
        )

    def _succeed(self, job: Job, lease: queue.Lease, stop: _Stop, result: TuneResult | FrontierResult) -> Outcome:
        """The result and the final progress, fenced: a quality or energy job's study totals (helpers' trials and
        NFEs included), a frontier job's largest budget's winner."""
        from mdmtune.tuning.result import TuneResult
        from mdmtune.tuning.search import count_trials

        if isinstance(result, TuneResult):
            result.study_name = job.study_name
            best = result.best
            value = best.search_value if best.search_value is not None else best.score
            trials_done = self.retrying(lambda: count_trials(stop.study)[0], "count trials")
        else:
            best = result.frontier[-1].winner
            value, trials_done = best.score, job.n_trials
        written = self.retrying(
            lambda: queue.finish(
                self.sessions,
                lease,
                JobStatus.succeeded,
                result=to_jsonable(result),
                trials_done=trials_done,
                nfe=result.nfe,
                best_value=_finite_or_none(value),
                best_params={"a": best.a, "b": best.b} if best.a is not None else None,
            ),
            "finish job",
        )
        return Outcome.succeeded if written else Outcome.lost

    def _refuse_without_sandbox(self, spec: TuneSpec, job: Job) -> None:
        """pass_at_1 runs the tenant's and the model's code: without the strong sandbox (or the operator's explicit
        allow_weak_sandbox) the job fails here, once, with the reason, before any model is loaded."""
        from mdmtune.sandbox import require_sandbox

        metric = spec.metric
        if metric is None and spec.objective != "energy":
            _checkpoint, row = self.retrying(lambda: self.objectives.rows(job, self.sessions), "read artifacts")
            metric = self.objectives.eval_set(row).declared_metric
        if metric == "pass_at_1":
            require_sandbox(self.settings.allow_weak_sandbox)

    def _resume_seed(self, seed: int, lease: queue.Lease, study: optuna.Study) -> int:
        """The sampler's seed: the job's own on a fresh study; on a resumed one it moves on with the trials already
        asked, so a resumed sampler never replays the draws of an earlier run (that would evaluate the same points
        twice), also after a database fault that gave the job back without counting the claim."""
        from optuna.trial import TrialState

        asked = self.retrying(
            lambda: sum(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False)), "count trials"
        )
        return (seed + lease.attempt - 1 + asked) % 2**32

    def _stopped(self, job: Job, lease: queue.Lease, reason: Outcome | None, trials_done: int) -> Outcome:
        """Cancelled or timed out: the end state with the study's finished count; SIGTERM: the job goes back."""
        if reason == Outcome.cancelled:
            written = queue.finish(self.sessions, lease, JobStatus.cancelled, trials_done=trials_done)
            return Outcome.cancelled if written else Outcome.lost
        if reason == Outcome.failed:
            job = queue.load_job(self.sessions, job.id)  # the limit may have changed while it ran
            limit = job.timeout_seconds if job.timeout_seconds is not None else self.settings.job_timeout_seconds
            error = f"timed out: the job ran longer than {limit:g} s (the finished trials are kept)"
            written = queue.finish(self.sessions, lease, JobStatus.failed, error=error, trials_done=trials_done)
            return Outcome.failed if written else Outcome.lost
        if reason == Outcome.released:
            queue.release(self.sessions, lease)
            return Outcome.released
        return Outcome.lost


def _finite_or_none(value: float | None) -> float | None:
    """Postgres and JSON both dislike inf/nan in plain columns; best_value None means 'not finite yet'."""
    import math

    return value if value is not None and math.isfinite(value) else None


def run_worker(settings: Settings, stop_event: threading.Event | None = None) -> None:
    """Run one worker until stop_event is set (the `mdmtune worker` command sets it on SIGTERM/SIGINT)."""
    Worker(settings, stop_event=stop_event).run_forever()
