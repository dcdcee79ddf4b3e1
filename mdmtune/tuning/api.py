"""One-call entry points: `tune(spec, ...) -> TuneResult` and `tune_sweep(spec, ...) -> SweepResult`.

For a notebook or the CLI: build the objective, create (or resume) the study, run the search, finalize. The service
does the same steps itself (create_study at POST time, run_search under a lease, finalize at the end), so that it
can resume and share a study; this module is the reference for that order.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

import optuna

from mdmtune.errors import InvalidInput
from mdmtune.tuning.energy_objective import EnergyObjective
from mdmtune.tuning.finalize import finalize
from mdmtune.tuning.result import SweepPoint, SweepResult, TuneResult
from mdmtune.tuning.search import Progress, create_study, run_search
from mdmtune.tuning.spec import TuneSpec


def default_study_name(spec: TuneSpec) -> str:
    """A name that changes with every field of the spec, so a rerun of the same job resumes its own study."""
    digest = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
    return f"mdmtune-{spec.objective}-N{spec.steps_list[0]}-{digest}"


def build_objective(
    spec: TuneSpec,
    *,
    checkpoint: Any = None,
    eval_set: Any = None,
    cache: Any = None,
    checkpoint_sha: str | None = None,
) -> EnergyObjective | Any:
    """The spec's objective; quality needs a checkpoint (path or Denoiser) and an eval set (path or EvalSet).

    `checkpoint_sha` names a loaded Denoiser in the score cache's key (e.g. the artifact's sha256); without it a
    loaded model is fingerprinted by hashing its parameters, which costs a pass over them.
    """
    steps = spec.steps_list[0]
    if spec.objective == "energy":
        return EnergyObjective(steps=steps, weight_a=spec.weight_a, weight_b=spec.weight_b)
    if checkpoint is None:
        raise InvalidInput("checkpoint", "the quality objective needs a checkpoint")
    if eval_set is None:
        raise InvalidInput("eval_set", "the quality objective needs an eval set")
    from mdmtune.tuning.quality_objective import QualityObjective

    return QualityObjective.build(
        spec, checkpoint=checkpoint, eval_set=eval_set, cache=cache, checkpoint_sha=checkpoint_sha
    )


def tune(
    spec: TuneSpec,
    *,
    checkpoint: str | os.PathLike[str] | Any = None,
    eval_set: str | os.PathLike[str] | Any = None,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    cache: Any = None,
    checkpoint_sha: str | None = None,
    validate_eval_set: str | os.PathLike[str] | Any = None,
) -> TuneResult:
    """A whole tuning job at one N in this process. storage None: in memory (nothing to resume).

    `validate_eval_set` (quality; a path or EvalSet): a second set on which the best and the baselines are
    re-scored when the search ends (`result.validation`, and `result.warnings` where the best loses there). It is
    checked before the search starts, so a set the job cannot score fails at once."""
    spec.validate()
    if len(spec.steps_list) != 1:
        raise InvalidInput("steps", "tune() takes one step count; use tune_sweep() for several")
    spec = spec.for_steps(spec.steps_list[0])
    objective = build_objective(
        spec, checkpoint=checkpoint, eval_set=eval_set, cache=cache, checkpoint_sha=checkpoint_sha
    )
    prepared = _prepare_validation(spec, objective, validate_eval_set)
    study = create_study(spec, storage, study_name or default_study_name(spec))
    run_search(spec, study, objective, progress=progress, should_stop=should_stop)
    return _validated(finalize(spec, study, objective), objective, prepared)


def _prepare_validation(spec: TuneSpec, objective: Any, validate_eval_set: Any) -> Any:
    if validate_eval_set is None:
        return None
    if spec.objective != "quality":
        raise InvalidInput("validate_eval_set", "only a quality job has a second eval set to check")
    from mdmtune.tuning.shift import prepare_validation

    return prepare_validation(objective, validate_eval_set)


def _validated(result: TuneResult, objective: Any, prepared: Any) -> TuneResult:
    if prepared is None:
        return result
    from mdmtune.tuning.shift import attach_validation

    return attach_validation(result, objective, prepared)


def tune_sweep(
    spec: TuneSpec,
    *,
    checkpoint: Any = None,
    eval_set: Any = None,
    storage: str | optuna.storages.BaseStorage | None = None,
    progress: Callable[[int, Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    cache: Any = None,
    validate_eval_set: Any = None,
) -> SweepResult:
    """Tune at each N of spec.steps (one study each, one shared score cache) and report quality vs steps."""
    spec.validate()
    started = time.perf_counter()
    results = []
    objective, prepared = None, None
    for steps in sorted(spec.steps_list):
        one = spec.for_steps(steps)
        objective = _reuse_or_build(one, objective, checkpoint, eval_set, cache)
        if prepared is None:
            prepared = _prepare_validation(one, objective, validate_eval_set)
        study = create_study(one, storage, default_study_name(one))
        report = None if progress is None else (lambda p, n=steps: progress(n, p))
        run_search(one, study, objective, progress=report, should_stop=should_stop)
        results.append(_validated(finalize(one, study, objective), objective, prepared))
    return summarize_sweep(spec.objective, results, time.perf_counter() - started)


def _reuse_or_build(spec: TuneSpec, previous: Any, checkpoint: Any, eval_set: Any, cache: Any) -> Any:
    """Quality objectives keep the loaded model and cache across N; only the step count changes."""
    if previous is not None and hasattr(previous, "with_steps"):
        return previous.with_steps(spec.steps_list[0])
    return build_objective(spec, checkpoint=checkpoint, eval_set=eval_set, cache=cache)


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
    tuned_steps = None
    reference = largest.baselines.get("linear")
    if objective == "quality" and reference is not None:
        for point in sorted(points, key=lambda p: p.steps):
            upper = point.tuned_ci[1] if point.tuned_ci else point.tuned
            if upper >= reference:
                tuned_steps = point.steps
                break
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
