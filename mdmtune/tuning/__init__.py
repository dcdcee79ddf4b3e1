"""Schedule tuning: an Optuna search over the Beta family's (a, b), for an energy or a quality objective.

The public surface (what the CLI and the service's workers call):
- `TuneSpec` (spec.py): the job, checked when made (a bad value raises InvalidInput naming the field).
- `create_study(spec, storage, study_name)`: creates or loads the study; baselines (linear, cos2) enqueued once.
- `run_search(spec, study, objective, *, progress, should_stop, worker_seed)`: batched ask/tell up to n_trials
  finished trials in the study (resumable, shareable between workers); `fail_stale_running_trials(study)` after a
  lapsed lease.
- `EnergyObjective`, `QualityObjective`: `evaluate(params) -> BatchValues(values, pruned, nfe)`.
- `finalize(spec, study, objective) -> TuneResult`; `tune(spec, ...)`, `tune_sweep(spec, ...)`: all in one call.
- `run_job(spec, JobInputs(...), open_study, JobHooks(...))` (lifecycle.py): a job's life, prepare -> search ->
  finish, as `tune()` and the service's worker both run it; the worker's lease, fencing and cancel are its hooks.
- `EvalSetFacts.of(eval_set)` (evalset_facts.py): what a job's checks read of an eval set, kept by the service.
- `run_frontier(spec, checkpoint=..., eval_set=...) -> FrontierResult`: at each budget (spec.steps), the tuned
  schedule, linear and cos2 against the threshold and entropy decoders, on a confirm split (frontier.py).
Never imports FastAPI or SQLAlchemy (storages are optuna's).
"""

from __future__ import annotations

from importlib import import_module

_HOMES = {
    "build_objective": "api",
    "default_study_name": "api",
    "tune": "api",
    "tune_sweep": "api",
    "EnergyObjective": "energy_objective",
    "EvalSetFacts": "evalset_facts",
    "finalize": "confirmation",
    "FrontierResult": "frontier",
    "run_frontier": "frontier",
    "JobHooks": "lifecycle",
    "JobInputs": "lifecycle",
    "Stopped": "lifecycle",
    "run_job": "lifecycle",
    "BatchValues": "objective",
    "Objective": "objective",
    "QualityObjective": "quality_objective",
    "BaselineScore": "result",
    "BestSchedule": "result",
    "SweepResult": "result",
    "TrialRecord": "result",
    "TuneResult": "result",
    "BASELINES": "search",
    "Progress": "search",
    "SearchRun": "search",
    "count_trials": "search",
    "create_study": "search",
    "fail_stale_running_trials": "search",
    "open_storage": "search",
    "run_search": "search",
    "study_nfe": "search",
    "TuneSpec": "spec",
}
"""Where each public name lives. Imported on first use: optuna (search) and torch (quality_objective) cost seconds,
and the CLI's commands that only need TuneSpec or the result types should not pay them."""

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module 'mdmtune.tuning' has no attribute {name!r}")
    value = getattr(import_module(f"mdmtune.tuning.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
