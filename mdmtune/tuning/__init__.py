"""Schedule tuning: an Optuna search over the Beta family's (a, b), for an energy or a quality objective.

The public surface (what the CLI and the service's workers call):
- `TuneSpec` (spec.py): the job; `validate()` names the bad field.
- `create_study(spec, storage, study_name)`: creates or loads the study; baselines (linear, cos2) enqueued once.
- `run_search(spec, study, objective, *, progress, should_stop, worker_seed)`: batched ask/tell up to n_trials
  finished trials in the study (resumable, shareable between workers); `fail_stale_running_trials(study)` after a
  lapsed lease.
- `EnergyObjective`, `QualityObjective`: `evaluate(params) -> BatchValues(values, pruned, nfe)`.
- `finalize(spec, study, objective) -> TuneResult`; `tune(spec, ...)`, `tune_sweep(spec, ...)`: all in one call.
Never imports FastAPI or SQLAlchemy (storages are optuna's).
"""

from __future__ import annotations

from mdmtune.tuning.api import build_objective, default_study_name, tune, tune_sweep
from mdmtune.tuning.energy_objective import EnergyObjective
from mdmtune.tuning.finalize import finalize
from mdmtune.tuning.objective import BatchValues, Objective
from mdmtune.tuning.result import BaselineScore, BestSchedule, SweepResult, TrialRecord, TuneResult
from mdmtune.tuning.search import (
    BASELINES,
    Progress,
    SearchRun,
    count_trials,
    create_study,
    fail_stale_running_trials,
    open_storage,
    run_search,
    study_nfe,
)
from mdmtune.tuning.spec import TuneSpec


def __getattr__(name: str) -> object:
    """QualityObjective pulls in torch and the samplers: imported only when asked for."""
    if name == "QualityObjective":
        from mdmtune.tuning.quality_objective import QualityObjective

        return QualityObjective
    raise AttributeError(name)


__all__ = [
    "BASELINES",
    "BaselineScore",
    "BatchValues",
    "BestSchedule",
    "EnergyObjective",
    "Objective",
    "Progress",
    "QualityObjective",
    "SearchRun",
    "SweepResult",
    "TrialRecord",
    "TuneResult",
    "TuneSpec",
    "build_objective",
    "count_trials",
    "create_study",
    "default_study_name",
    "fail_stale_running_trials",
    "finalize",
    "open_storage",
    "run_search",
    "study_nfe",
    "tune",
    "tune_sweep",
]
