"""The search: an Optuna study over (a, b), driven by ask/tell in batches. The contract the service relies on.

- `create_study(spec, storage, study_name)` creates the study (or loads it) in any SQLAlchemy URL or optuna storage
  and enqueues the baselines linear (0.5, 0.5) and cos2 (1, 1) once, only when this call created the study, so two
  workers never duplicate them (optuna's enqueue checks then writes (a known Optuna pitfall)).
- `run_search(spec, study, objective, ...)` asks `trials_per_batch` trials at once, evaluates them in one batch and
  tells the results, until the study holds `n_trials` finished (COMPLETE or PRUNED) trials, counting the ones
  already there: a resumed or shared study never goes past the request. Trials RUNNING in other workers reserve their
  place in the budget; a trial asked past the budget in a race between workers is told FAIL at once (tagged
  `surplus`), so the finished count stops at exactly n_trials. `should_stop()` is checked between batches and,
  by objectives that sample a model, between model batches: an interrupted batch is told FAIL and re-enqueued.
- `fail_stale_running_trials(study)` tells FAIL to the trials a dead worker left RUNNING and re-enqueues their
  (a, b). Optuna's own heartbeat works only inside optimize(), so the job lease is the heartbeat: call this only
  when the caller knows the lease lapsed, never from a live worker's loop.
- Several workers on one study: each passes its own `worker_seed`; TPE runs with constant_liar=True so that
  running trials push new asks elsewhere.
The core never imports SQLAlchemy: storages are optuna's, opened from a URL string.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, Trial, TrialState

from mdmtune.core.schedules import NAMED_AB
from mdmtune.errors import InvalidInput, MdmtuneError
from mdmtune.tuning.objective import BatchValues, EvaluationStopped, Objective
from mdmtune.tuning.spec import TuneSpec

log = logging.getLogger(__name__)

BASELINES: tuple[str, ...] = ("linear", "cos2")
"""Enqueued as the first trials of every study: the schedules a user would otherwise keep."""
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
SPEC_ATTR = "mdmtune_spec"
BASELINE_ATTR = "baseline"
SURPLUS_ATTR = "surplus"
REQUEUED_ATTR = "requeued_from"
"""On a re-enqueued trial: the number of the trial it stands in for (which was told FAIL)."""
NFE_ATTR = "nfe"


@dataclass(frozen=True)
class Progress:
    """Where a search stands, handed to the progress callback after every batch."""

    trials_done: int
    n_trials: int
    nfe: int
    """NFEs this run_search call spent (a resumed or shared study's other runs are not included)."""
    best_value: float | None
    best_params: dict[str, float] | None
    elapsed_s: float


@dataclass(frozen=True)
class SearchRun:
    """What one run_search call did."""

    nfe: int
    batches: int
    trials_told: int
    stopped: bool
    """True when should_stop() ended the loop before the budget was reached."""
    elapsed_s: float


def open_storage(storage: str | optuna.storages.BaseStorage | None) -> optuna.storages.BaseStorage:
    """An optuna storage from a SQLAlchemy URL (SQLite gets a busy timeout, Postgres pre-ping), or as given."""
    if storage is None:
        return optuna.storages.InMemoryStorage()
    if not isinstance(storage, str):
        return storage
    sqlite = storage.startswith("sqlite")
    if sqlite:
        _use_wal(storage)
    kwargs = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
    return optuna.storages.RDBStorage(storage, engine_kwargs=kwargs)


def _use_wal(url: str) -> None:
    """WAL journal for a SQLite file (persistent in the file): readers never block the writer, and each commit
    syncs once, which halves the time per trial. Set with the standard library, before optuna opens the file."""
    path = url.split("///", 1)[-1].split("?", 1)[0]
    if not path or path == ":memory:" or url.count("///") == 0:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, timeout=60)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def make_sampler(spec: TuneSpec, seed: int) -> optuna.samplers.BaseSampler:
    """The sampler for spec.search_algorithm, seeded; TPE multivariate (a and b interact) with constant liar."""
    algorithm = spec.search_algorithm
    if algorithm == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True, n_startup_trials=10)
    if algorithm == "gp":
        return optuna.samplers.GPSampler(seed=seed, deterministic_objective=spec.objective == "energy")
    if algorithm == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, popsize=max(spec.trials_per_batch, 4))
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise InvalidInput("search_algorithm", f"unknown value {algorithm!r}")


def distributions(spec: TuneSpec) -> dict[str, FloatDistribution]:
    """Log-uniform a and b: the interesting shapes span two decades (0.05 .. 5)."""
    return {
        "a": FloatDistribution(*map(float, spec.a_bounds), log=True),
        "b": FloatDistribution(*map(float, spec.b_bounds), log=True),
    }


def create_study(
    spec: TuneSpec, storage: str | optuna.storages.BaseStorage | None, study_name: str | None = None
) -> optuna.Study:
    """Create (or load) the study and enqueue the in-bounds baselines, only if this call created it."""
    backend = open_storage(storage)
    sampler = make_sampler(spec, spec.seed)
    try:
        study = optuna.create_study(
            storage=backend, study_name=study_name, direction=spec.direction, sampler=sampler, load_if_exists=False
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=backend, study_name=study_name, sampler=sampler)
        _check_same_direction(study, spec)
        return study
    study.set_user_attr(SPEC_ATTR, spec.to_dict())
    for name in baseline_names_in_bounds(spec):
        a, b = NAMED_AB[name]
        study.enqueue_trial({"a": a, "b": b}, user_attrs={BASELINE_ATTR: name})
    return study


def baseline_names_in_bounds(spec: TuneSpec) -> list[str]:
    """Baselines outside the search box are not enqueued (the sampler's model must stay inside its box)."""
    names = []
    for name in BASELINES:
        a, b = NAMED_AB[name]
        if spec.a_bounds[0] <= a <= spec.a_bounds[1] and spec.b_bounds[0] <= b <= spec.b_bounds[1]:
            names.append(name)
    return names


def _check_same_direction(study: optuna.Study, spec: TuneSpec) -> None:
    if study.direction.name.lower() != spec.direction:
        raise InvalidInput("objective", f"the existing study {study.study_name!r} does not {spec.direction}")


def fail_stale_running_trials(study: optuna.Study, *, requeue: bool = True) -> list[int]:
    """Tell FAIL to every RUNNING trial (their worker is gone) and re-enqueue their (a, b); returns their numbers.

    Call only when the job's lease lapsed: a live worker's RUNNING trials are indistinguishable from stale ones.
    """
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if fail_and_requeue(study, trial, requeue=requeue):
            failed.append(trial.number)
    return failed


def fail_and_requeue(study: optuna.Study, trial: FrozenTrial | Trial, *, requeue: bool = True) -> bool:
    """Tell a RUNNING trial FAIL and enqueue its point again (baseline attr kept); False if it finished meanwhile.

    The copy is enqueued first, marked with the trial's number (`requeued_from`), and only then is the trial told
    FAIL: a database fault between the two (or an error after a commit that did happen) leaves at worst a trial
    still RUNNING whose copy exists, and a retry finds the copy instead of adding another, so the point is
    neither lost nor evaluated twice.
    """
    point = trial_point(trial) if requeue else None
    if point is not None and not _has_copy(study, trial.number):
        attrs = {k: v for k, v in trial.user_attrs.items() if k == BASELINE_ATTR}
        study.enqueue_trial(point, user_attrs={**attrs, REQUEUED_ATTR: trial.number})
    try:
        study.tell(trial.number, state=TrialState.FAIL)
    except (RuntimeError, ValueError):
        if point is not None:  # finished meanwhile by a worker wrongly thought gone: its copy may run once more
            log.warning("trial %d finished while being reaped; its re-enqueued copy stays", trial.number)
        return False
    return True


def _has_copy(study: optuna.Study, number: int) -> bool:
    return any(t.user_attrs.get(REQUEUED_ATTR) == number for t in study.get_trials(deepcopy=False))


def trial_point(trial: FrozenTrial | Trial) -> dict[str, float] | None:
    """The trial's (a, b): its params, or, for an enqueued trial popped by a worker that died (or lost its
    database connection) before sampling it, the fixed params it was enqueued with; None when it has neither."""
    params = trial.params
    if not {"a", "b"} <= set(params):
        params = (getattr(trial, "system_attrs", None) or {}).get("fixed_params") or {}
    if not {"a", "b"} <= set(params):
        return None
    return {"a": float(params["a"]), "b": float(params["b"])}


def study_nfe(study: optuna.Study) -> int:
    """NFEs every run_search on this study spent (each batch's count shared out over its trials)."""
    return round(sum(t.user_attrs.get(NFE_ATTR, 0.0) for t in study.get_trials(deepcopy=False)))


def count_trials(study: optuna.Study) -> tuple[int, int]:
    """(finished, running) trials in the study right now."""
    trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
    finished = sum(t.state in FINISHED for t in trials)
    return finished, len(trials) - finished


def run_search(
    spec: TuneSpec,
    study: optuna.Study,
    objective: Objective,
    *,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    worker_seed: int | None = None,
    poll_s: float = 0.2,
) -> SearchRun:
    """Ask/tell in batches until the study holds spec.trials finished trials (or should_stop() says stop)."""
    if objective.direction != spec.direction:
        raise InvalidInput("objective", f"the objective should {spec.direction}, not {objective.direction}")
    study.sampler = make_sampler(spec, spec.seed if worker_seed is None else worker_seed)
    study.pruner = objective.pruner or optuna.pruners.NopPruner()
    n_trials, space = spec.trials, distributions(spec)
    start, nfe, batches, told = time.perf_counter(), 0, 0, 0
    while True:
        if should_stop is not None and should_stop():
            return SearchRun(nfe, batches, told, True, time.perf_counter() - start)
        finished, running = count_trials(study)
        if finished >= n_trials:
            return SearchRun(nfe, batches, told, False, time.perf_counter() - start)
        free = n_trials - finished - running
        if free <= 0:
            time.sleep(poll_s)  # other workers hold the rest of the budget; wait for them to finish or fail
            continue
        trials = _ask_within_budget(study, space, min(spec.trials_per_batch, free), n_trials)
        if not trials:
            continue
        try:
            outcome = _evaluate_or_fail(study, objective, trials, should_stop)
        except EvaluationStopped:  # the batch was told FAIL and enqueued again by _evaluate_or_fail
            return SearchRun(nfe, batches, told, True, time.perf_counter() - start)
        _tell_all(study, trials, outcome)
        nfe, batches, told = nfe + outcome.nfe, batches + 1, told + len(trials)
        if progress is not None:
            progress(_progress(study, n_trials, nfe, time.perf_counter() - start))


_ASK_LOCK = threading.Lock()
"""Optuna pops an enqueued trial with check-then-set, which SQLite (no SELECT FOR UPDATE) lets two threads win at
once; workers in one process therefore ask one at a time. Across processes the tell below tolerates the rare double."""


def _ask_within_budget(study: optuna.Study, space: dict, count: int, n_trials: int) -> list[Trial]:
    """Ask `count` trials; any whose place (non-failed trials before it) is past the budget is told FAIL at once."""
    with _ASK_LOCK:
        return _ask_and_trim(study, space, count, n_trials)


def _ask_and_trim(study: optuna.Study, space: dict, count: int, n_trials: int) -> list[Trial]:
    asked = [study.ask(space) for _ in range(count)]
    failed_before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    kept = []
    for trial in asked:
        place = trial.number - sum(1 for n in failed_before if n < trial.number)
        if place >= n_trials:
            trial.set_user_attr(SURPLUS_ATTR, True)
            study.tell(trial, state=TrialState.FAIL)
            failed_before.add(trial.number)
        else:
            kept.append(trial)
    return kept


def _evaluate_or_fail(
    study: optuna.Study, objective: Objective, trials: list[Trial], should_stop: Callable[[], bool] | None
) -> BatchValues:
    """Evaluate the batch; on any error tell FAIL for the batch first, so nothing is left RUNNING by a live worker."""
    baseline = [BASELINE_ATTR in t.user_attrs for t in trials]

    def report(index: int, step: int, value: float) -> bool:
        trial = trials[index]
        trial.report(value, step)
        prune = trial.should_prune()  # also records the rung value for the other trials' decisions
        return prune and not baseline[index]  # baselines always run to the end: they are the reference

    try:
        params = [(t.params["a"], t.params["b"]) for t in trials]
        outcome = objective.evaluate(params, report=report, should_stop=should_stop)
    except BaseException:
        # told FAIL and enqueued again: a batch stopped, or lost to an error (a passing database fault, say), is
        # evaluated again when the job resumes, so no point (a baseline least of all) goes missing
        for trial in trials:
            _fail_and_requeue_quietly(study, trial)
        raise
    if len(outcome.values) != len(trials):
        raise MdmtuneError(f"objective returned {len(outcome.values)} values for {len(trials)} trials")
    return outcome


def _tell_all(study: optuna.Study, trials: list[Trial], outcome: BatchValues) -> None:
    """Tell each result; the batch's NFEs are shared out over its trials (user attr `nfe`), so sums stay exact.

    A trial another worker already finished (both popped the same enqueued trial) is skipped: it counts once.
    """
    share = outcome.nfe / len(trials)
    for trial, value, pruned in zip(trials, outcome.values, outcome.pruned, strict=True):
        try:
            if share:
                trial.set_user_attr(NFE_ATTR, share)
            if pruned:
                study.tell(trial, state=TrialState.PRUNED)
            else:
                study.tell(trial, value)
        except (ValueError, RuntimeError) as error:
            log.warning("trial %d was finished elsewhere: %s", trial.number, error)


def _fail_and_requeue_quietly(study: optuna.Study, trial: Trial) -> None:
    """Not possible (the storage is gone): the trial stays RUNNING, and the next lease holder reaps it."""
    try:
        fail_and_requeue(study, trial)
    except Exception:
        log.warning("could not fail and re-enqueue trial %s", trial.number, exc_info=True)


def _progress(study: optuna.Study, n_trials: int, nfe: int, elapsed: float) -> Progress:
    trials = study.get_trials(deepcopy=False, states=FINISHED)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best = None
    if complete:
        pick = min if study.direction == optuna.study.StudyDirection.MINIMIZE else max
        best = pick(complete, key=lambda t: t.value)
    return Progress(
        trials_done=len(trials),
        n_trials=n_trials,
        nfe=nfe,
        best_value=None if best is None else float(best.value),
        best_params=None if best is None else {k: float(v) for k, v in best.params.items()},
        elapsed_s=elapsed,
    )
