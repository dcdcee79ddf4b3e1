"""One tuning job's life, written once: prepare -> search -> finish.

- prepare: load what is given as a path, encode the eval set, split it and check it (the objective), and encode
  the second eval set of a quality job, so that a set the job cannot score fails before any trial is paid for;
- search: batches of trials on the job's study (`run_search`), with a progress callback and a stop check;
- finish: finalize (the confirm split), the second set's re-scoring and the warnings.
A steps sweep runs search and finish once per N on one prepared model and score cache; a frontier job is
`run_frontier` (a search per budget beside the adaptive decoders) under the same stop check.

The library's `tune()` / `tune_sweep()` and the service's worker both run these steps; the worker adds only what a
shared database needs, through `JobHooks` and the study it opens: its tagged study in the service's database, the
sampler seed of a resumed study, progress written under its lease, and a stop check that watches the lease, the
cancel flag, the timeout and SIGTERM. Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import optuna

from mdmtune.errors import InvalidInput
from mdmtune.tuning.confirmation import finalize
from mdmtune.tuning.energy_objective import EnergyObjective
from mdmtune.tuning.objective import EvaluationStopped, StopCheck
from mdmtune.tuning.result import SweepPoint, SweepResult, TuneResult
from mdmtune.tuning.search import Progress, SearchRun, count_trials, run_search
from mdmtune.tuning.spec import TuneSpec

if TYPE_CHECKING:
    from mdmtune.data.evalsets import EvalSet
    from mdmtune.models.base import Denoiser
    from mdmtune.tuning.cache import ScoreCache
    from mdmtune.tuning.evaluation import EncodedSet
    from mdmtune.tuning.frontier import FrontierResult
    from mdmtune.tuning.quality_objective import QualityObjective

StudyOpener = Callable[[TuneSpec], optuna.Study]
"""Opens (or creates) the study of one step count: in memory or --storage for the library, the job's tagged study in
the service's database for a worker."""


@dataclass(frozen=True)
class JobInputs:
    """What a job runs on. Energy jobs need none; quality and frontier jobs a checkpoint and an eval set."""

    checkpoint: str | os.PathLike[str] | Denoiser | None = None
    eval_set: str | os.PathLike[str] | EvalSet | None = None
    validate_eval_set: str | os.PathLike[str] | EvalSet | None = None
    """Quality: a second set on which the best and the baselines are re-scored when the search ends."""
    cache: ScoreCache | None = None
    checkpoint_sha: str | None = None
    """Names a loaded Denoiser in the score cache's key; without it its parameters are hashed (a pass over them)."""


@dataclass(frozen=True)
class JobHooks:
    """What the caller adds around the steps; every hook is optional."""

    progress: Callable[[Progress], None] | None = None
    """After every batch of trials."""
    should_stop: StopCheck | None = None
    """Polled between batches and between model batches."""
    worker_seed: Callable[[optuna.Study], int] | None = None
    """The sampler's seed on an opened study (a resumed study must not replay the draws of an earlier run)."""
    on_budget: Callable[[int, int], None] | None = None
    """Frontier: (budgets done, model calls so far) after each budget."""
    narrate: Callable[[str], None] | None = None
    """Frontier: one line per stage."""
    finish_when_stopped: bool = True
    """True (the library): a stopped search is finalized on the trials it has. False (a worker): a stop ends the
    job without a result (`Stopped`), also while the confirm split or the frontier is being scored."""


@dataclass(frozen=True)
class Stopped:
    """should_stop() ended the job before it had a result (only with finish_when_stopped False)."""

    trials_done: int | None
    """Finished trials in the job's study; None for a frontier job (its progress counts whole budgets)."""


@dataclass(frozen=True)
class PreparedJob:
    """A job after prepare: its spec at one N, its objective, and its encoded second eval set (if any)."""

    spec: TuneSpec
    objective: EnergyObjective | QualityObjective
    validation: tuple[EvalSet, EncodedSet] | None = None

    def at_steps(self, steps: int, inputs: JobInputs) -> PreparedJob:
        """The same job at another N: a quality objective keeps its loaded model, split and score cache."""
        spec = self.spec.for_steps(steps)
        if isinstance(self.objective, EnergyObjective):
            return dataclasses.replace(self, spec=spec, objective=build_objective(spec, inputs))
        return dataclasses.replace(self, spec=spec, objective=self.objective.with_steps(steps))


def build_objective(spec: TuneSpec, inputs: JobInputs) -> EnergyObjective | QualityObjective:
    """The spec's objective at its first N; quality needs a checkpoint (path or Denoiser) and an eval set."""
    steps = spec.steps_list[0]
    if spec.objective == "energy":
        return EnergyObjective(steps=steps, weight_a=spec.weight_a, weight_b=spec.weight_b)
    if inputs.checkpoint is None:
        raise InvalidInput("checkpoint", "the quality objective needs a checkpoint")
    if inputs.eval_set is None:
        raise InvalidInput("eval_set", "the quality objective needs an eval set")
    from mdmtune.tuning.quality_objective import QualityObjective

    return QualityObjective.build(
        spec,
        checkpoint=inputs.checkpoint,
        eval_set=inputs.eval_set,
        cache=inputs.cache,
        checkpoint_sha=inputs.checkpoint_sha,
    )


def prepare(spec: TuneSpec, inputs: JobInputs) -> PreparedJob:
    """Load, encode, split and check, for the spec's first N; the second eval set is checked here too, so a set the
    job cannot score fails before the search starts."""
    objective = build_objective(spec, inputs)
    if inputs.validate_eval_set is None:
        return PreparedJob(spec, objective)
    if isinstance(objective, EnergyObjective):
        raise InvalidInput("validate_eval_set", "only a quality job has a second eval set to check")
    from mdmtune.tuning.shift import prepare_validation

    return PreparedJob(spec, objective, prepare_validation(objective, inputs.validate_eval_set))


def search(job: PreparedJob, study: optuna.Study, hooks: JobHooks) -> SearchRun:
    """Batches of trials until the study holds the requested finished trials, or should_stop() says stop."""
    seed = None if hooks.worker_seed is None else hooks.worker_seed(study)
    return run_search(
        job.spec, study, job.objective, progress=hooks.progress, should_stop=hooks.should_stop, worker_seed=seed
    )


def finish(job: PreparedJob, study: optuna.Study, should_stop: StopCheck | None = None) -> TuneResult:
    """The result: finalize on the confirm split, then the second set's re-scoring and its warnings."""
    result = finalize(job.spec, study, job.objective, should_stop=should_stop)
    if job.validation is None:
        return result
    from mdmtune.tuning.shift import attach_validation

    return attach_validation(result, job.objective, job.validation)


def run_one(spec: TuneSpec, inputs: JobInputs, open_study: StudyOpener, hooks: JobHooks) -> TuneResult | Stopped:
    """A quality or energy job at one N: prepare, search, finish."""
    job = prepare(spec, inputs)
    return _search_and_finish(job, open_study(job.spec), hooks)


def _search_and_finish(job: PreparedJob, study: optuna.Study, hooks: JobHooks) -> TuneResult | Stopped:
    run = search(job, study, hooks)
    if hooks.finish_when_stopped:
        return finish(job, study)
    if run.stopped:
        return Stopped(count_trials(study)[0])
    try:
        return finish(job, study, hooks.should_stop)
    except EvaluationStopped:  # stopped while confirming
        return Stopped(count_trials(study)[0])


def run_sweep(
    spec: TuneSpec,
    inputs: JobInputs,
    open_study: StudyOpener,
    hooks: JobHooks,
    progress: Callable[[int, Progress], None] | None = None,
) -> SweepResult:
    """Search and finish at each N of spec.steps (one study each, one prepared model and score cache), then quality
    against steps. progress(N, progress) after every batch. Library only: a stopped N is finalized as it is."""
    started = time.perf_counter()
    results: list[TuneResult] = []
    job: PreparedJob | None = None
    for steps in sorted(spec.steps_list):
        job = prepare(spec.for_steps(steps), inputs) if job is None else job.at_steps(steps, inputs)
        report = None if progress is None else (lambda p, n=steps: progress(n, p))
        one_hooks = dataclasses.replace(hooks, progress=report, finish_when_stopped=True)
        result = _search_and_finish(job, open_study(job.spec), one_hooks)
        assert isinstance(result, TuneResult)
        results.append(result)
    return summarize_sweep(spec.objective, results, time.perf_counter() - started)


def run_frontier_job(spec: TuneSpec, inputs: JobInputs, hooks: JobHooks) -> FrontierResult | Stopped:
    """A frontier job: at each budget the tuned schedule and the baselines against the adaptive decoders."""
    from mdmtune.tuning.frontier import run_frontier

    try:
        return run_frontier(
            spec,
            checkpoint=inputs.checkpoint,
            eval_set=inputs.eval_set,
            cache=inputs.cache,
            checkpoint_sha=inputs.checkpoint_sha,
            progress=hooks.narrate,
            should_stop=hooks.should_stop,
            on_budget=hooks.on_budget,
        )
    except EvaluationStopped:
        if hooks.finish_when_stopped:
            raise
        return Stopped(None)


def run_job(
    spec: TuneSpec, inputs: JobInputs, open_study: StudyOpener, hooks: JobHooks
) -> TuneResult | FrontierResult | Stopped:
    """A service job (one N, or a frontier over budgets): what a worker runs under its lease."""
    if spec.objective == "frontier":
        return run_frontier_job(spec, inputs, hooks)
    if len(spec.steps_list) != 1:
        raise InvalidInput("steps", "a service job tunes one step count")
    return run_one(spec, inputs, open_study, hooks)


def summarize_sweep(objective: str, results: list[TuneResult], wall_time_s: float) -> SweepResult:
    """Quality vs steps, and the fewest N at which the tuned schedule matches linear at the largest N.

    "Matches" means linear's score at the largest N lies at or below the upper end of the tuned score's 95% Wilson
    interval at that N: the data cannot tell them apart (or tuned is ahead).
    """
    points = [
        SweepPoint(
            steps=r.steps,
            tuned=r.best.score,
            tuned_ci=r.best.ci,
            baselines={name: b.score for name, b in r.baselines.items()},
        )
        for r in results
    ]
    largest = max(points, key=lambda p: p.steps)
    tuned_steps = _matching_steps(points, largest) if objective == "quality" else None
    savings = None if tuned_steps is None else 1.0 - tuned_steps / largest.steps
    return SweepResult(
        objective=objective,
        steps=[r.steps for r in results],
        results=results,
        points=points,
        linear_steps=largest.steps,
        tuned_steps=tuned_steps,
        step_savings=savings,
        nfe=sum(r.nfe for r in results),
        wall_time_s=wall_time_s,
    )


def _matching_steps(points: list[SweepPoint], largest: SweepPoint) -> int | None:
    reference = largest.baselines.get("linear")
    if reference is None:
        return None
    for point in sorted(points, key=lambda p: p.steps):
        upper = point.tuned_ci[1] if point.tuned_ci else point.tuned
        if upper >= reference:
            return point.steps
    return None
