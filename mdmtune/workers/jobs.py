"""Job submission and trial reads for the API.

`submit_job` is the one way a job enters the queue (the API calls it; so do the tests and the demo).
Trials live only in Optuna's tables (no project `trials` table, see mdmtune.db.models): Optuna is the single
source of truth, and optuna-dashboard shows the same rows.
"""

from __future__ import annotations

import contextlib
from typing import Any

import optuna
from optuna.trial import TrialState
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mdmtune.cli.output import to_jsonable
from mdmtune.db.models import LOCAL_OWNER, Job, JobStatus, new_id
from mdmtune.errors import InvalidInput
from mdmtune.tuning.spec import TuneSpec


def list_trials(storage: optuna.storages.BaseStorage, study_name: str) -> list[dict[str, Any]]:
    """Every trial that ran or runs (not WAITING ones), by number: number, state, a, b, value, user_attrs.

    An unknown study (not created yet, or deleted) has no trials. Non-finite values are written "inf"/"-inf"/"nan".
    """
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return []
    rows = []
    for trial in storage.get_all_trials(study_id, deepcopy=False):
        if trial.state == TrialState.WAITING:
            continue
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "a": trial.params.get("a"),
                "b": trial.params.get("b"),
                "value": to_jsonable(trial.value),
                "user_attrs": to_jsonable(dict(trial.user_attrs)),
            }
        )
    return sorted(rows, key=lambda row: row["number"])


def submit_job(
    session: Session,
    storage: optuna.storages.BaseStorage,
    spec: TuneSpec,
    *,
    owner_key_id: str = LOCAL_OWNER,
    checkpoint_id: str | None = None,
    eval_set_id: str | None = None,
    validate_eval_set_id: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    timeout_seconds: float | None = None,
) -> Job:
    """Create the job's Optuna study (baselines enqueued once, here) and its queued row; commit; return the row.

    The study is created first and in its own transactions: on SQLite, holding the row's write transaction open
    while Optuna writes through its own connection would wait on ourselves. If the row cannot be committed (say, an
    Idempotency-Key race lost on the unique constraint), the study is deleted again and the IntegrityError raised.
    """
    from mdmtune.tuning.search import create_study

    spec = spec.validate()
    if len(spec.steps_list) != 1 and spec.objective != "frontier":
        raise InvalidInput("steps", "a service job tunes one step count; submit one job per step count")
    job_id = new_id()
    study_name = f"mdmtune-job-{job_id}"
    if spec.objective != "frontier":  # a frontier job runs one in-memory search per budget, in its worker
        create_study(spec, storage, study_name)
    job = Job(
        id=job_id,
        owner_key_id=owner_key_id,
        status=JobStatus.queued.value,
        objective=spec.objective,
        request=spec.to_dict(),
        checkpoint_id=checkpoint_id,
        eval_set_id=eval_set_id,
        validate_eval_set_id=validate_eval_set_id,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        study_name=study_name,
        n_trials=spec.trials * len(spec.steps_list),  # a frontier job runs one search per budget
        timeout_seconds=timeout_seconds,
    )
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=study_name, storage=storage)
        raise
    return job
