"""One-call entry points: `tune(spec, ...) -> TuneResult` and `tune_sweep(spec, ...) -> SweepResult`.

For a notebook or the CLI: the job's life (prepare, search, finish) is mdmtune.tuning.lifecycle's, the same steps
the service's worker runs; here the study lives in memory or in the `storage` given (a rerun resumes its study).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import optuna

from mdmtune.errors import InvalidInput
from mdmtune.tuning import lifecycle
from mdmtune.tuning.energy_objective import EnergyObjective
from mdmtune.tuning.lifecycle import JobHooks, JobInputs, run_one, run_sweep, summarize_sweep
from mdmtune.tuning.result import SweepResult, TuneResult
from mdmtune.tuning.search import Progress, create_study
from mdmtune.tuning.spec import TuneSpec

if TYPE_CHECKING:
    from mdmtune.data.evalsets import EvalSet
    from mdmtune.models.base import Denoiser
    from mdmtune.tuning.cache import ScoreCache
    from mdmtune.tuning.quality_objective import QualityObjective

__all__ = ["build_objective", "default_study_name", "summarize_sweep", "tune", "tune_sweep"]

Storage = str | optuna.storages.BaseStorage | None


def default_study_name(spec: TuneSpec) -> str:
    """A name that changes with every field of the spec, so a rerun of the same job resumes its own study."""
    digest = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:12]
    return f"mdmtune-{spec.objective}-N{spec.steps_list[0]}-{digest}"


def build_objective(
    spec: TuneSpec,
    *,
    checkpoint: str | os.PathLike[str] | Denoiser | None = None,
    eval_set: str | os.PathLike[str] | EvalSet | None = None,
    cache: ScoreCache | None = None,
    checkpoint_sha: str | None = None,
) -> EnergyObjective | QualityObjective:
    """The spec's objective; quality needs a checkpoint (path or Denoiser) and an eval set (path or EvalSet).

    `checkpoint_sha` names a loaded Denoiser in the score cache's key (e.g. the artifact's sha256); without it a
    loaded model is fingerprinted by hashing its parameters, which costs a pass over them.
    """
    inputs = JobInputs(checkpoint=checkpoint, eval_set=eval_set, cache=cache, checkpoint_sha=checkpoint_sha)
    return lifecycle.build_objective(spec, inputs)


def tune(
    spec: TuneSpec,
    *,
    checkpoint: str | os.PathLike[str] | Denoiser | None = None,
    eval_set: str | os.PathLike[str] | EvalSet | None = None,
    storage: Storage = None,
    study_name: str | None = None,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    cache: ScoreCache | None = None,
    checkpoint_sha: str | None = None,
    validate_eval_set: str | os.PathLike[str] | EvalSet | None = None,
) -> TuneResult:
    """A whole tuning job at one N in this process. storage None: in memory (nothing to resume).

    `validate_eval_set` (quality; a path or EvalSet): a second set on which the best and the baselines are
    re-scored when the search ends (`result.validation`, and `result.warnings` where the best loses there). It is
    checked before the search starts, so a set the job cannot score fails at once. A stop (should_stop) ends the
    search; the result reports the trials it finished."""
    if len(spec.steps_list) != 1:
        raise InvalidInput("steps", "tune() takes one step count; use tune_sweep() for several")
    inputs = JobInputs(checkpoint, eval_set, validate_eval_set, cache, checkpoint_sha)
    hooks = JobHooks(progress=progress, should_stop=should_stop)
    result = run_one(
        spec.for_steps(spec.steps_list[0]),
        inputs,
        lambda one: create_study(one, storage, study_name or default_study_name(one)),
        hooks,
    )
    assert isinstance(result, TuneResult)  # finish_when_stopped: the library always has a result
    return result


def tune_sweep(
    spec: TuneSpec,
    *,
    checkpoint: str | os.PathLike[str] | Denoiser | None = None,
    eval_set: str | os.PathLike[str] | EvalSet | None = None,
    storage: Storage = None,
    progress: Callable[[int, Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    cache: ScoreCache | None = None,
    validate_eval_set: str | os.PathLike[str] | EvalSet | None = None,
) -> SweepResult:
    """Tune at each N of spec.steps (one study each, one shared score cache) and report quality vs steps."""
    inputs = JobInputs(checkpoint, eval_set, validate_eval_set, cache)
    return run_sweep(
        spec,
        inputs,
        lambda one: create_study(one, storage, default_study_name(one)),
        JobHooks(should_stop=should_stop),
        progress,
    )
