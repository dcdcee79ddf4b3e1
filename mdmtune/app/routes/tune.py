"""Tuning jobs: create (202 + Location, Idempotency-Key), read, best schedule, trials, cancel.

Thin: the request is validated by TuneSpec and against its artifacts (mdmtune.app.compat), the job row and the
Optuna study (baselines enqueued once, here) are written, and the workers do the rest.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Response
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from mdmtune.app import idempotency
from mdmtune.app.compat import check_against_artifacts, check_validation_set
from mdmtune.app.deps import Services, current_owner, get_services
from mdmtune.app.jobs_view import best_out, job_out
from mdmtune.app.problems import Problem, problem_responses
from mdmtune.app.schemas import BestOut, JobOut, TrialOut, TrialsPage, TuneRequest
from mdmtune.db.models import Checkpoint, EvalSet, Job, new_id, utcnow
from mdmtune.errors import InvalidInput
from mdmtune.tuning.spec import TuneSpec

router = APIRouter(prefix="/v1/tune", tags=["tune"], responses=problem_responses(401, 404, 409, 422))

MAX_PAGE = 1000
MODEL_OBJECTIVES = ("quality", "frontier")


def _owned(session: Session, model: type, item_id: str | None, owner: str, field: str):
    if item_id is None:
        raise Problem(422, "required for objective=quality", field)
    row = session.get(model, item_id)
    if row is None or row.owner_key_id != owner:
        raise Problem(422, f"no such {field.removesuffix('_id').replace('_', ' ')}: {item_id!r}", field)
    return row


def _job(session: Session, job_id: str, owner: str, with_result: bool = False) -> Job:
    """The caller's job; 404 for a job of another owner too, so ids do not leak. The result (every trial, the
    confirm details) is loaded only where it is shown: a poll does not need it."""
    job = session.get(Job, job_id, options=[] if with_result else [defer(Job.result)])
    if job is None or job.owner_key_id != owner:
        raise Problem(404, f"no tuning job {job_id!r}", "id")
    return job


def _accepted(response: Response, job: Job) -> JobOut:
    response.headers["Location"] = f"/v1/tune/{job.id}"
    return job_out(job)


@router.post("", status_code=202, response_model=JobOut, summary="Create a tuning job")
def create_job(
    body: TuneRequest,
    response: Response,
    idempotency_key: str | None = Header(
        None,
        alias=idempotency.HEADER,
        description="Retry-safe creation: the same key and body return the first job; another body is a 422; "
        "a retry while the first request is still being processed is a 409.",
    ),
    owner: str = Depends(current_owner),
    services: Services = Depends(get_services),
) -> JobOut:
    key = idempotency.check_key(idempotency_key)
    digest = idempotency.body_hash(body.model_dump(mode="json"))
    with idempotency.first_request(services, owner, key), services.sessions() as session:
        earlier = idempotency.earlier_job(session, owner, key, digest)
        if earlier is not None:
            return _accepted(response, earlier)
        spec = TuneSpec.from_mapping(body.spec_fields()).validate()
        checkpoint = eval_set = None
        if spec.objective in MODEL_OBJECTIVES:
            checkpoint = _owned(session, Checkpoint, body.checkpoint_id, owner, "checkpoint_id")
            eval_set = _owned(session, EvalSet, body.eval_set_id, owner, "eval_set_id")
            second = None
            if body.validate_eval_set_id is not None:
                second = _owned(session, EvalSet, body.validate_eval_set_id, owner, "validate_eval_set_id")
            session.commit()  # end the read transaction: the checks below may load a model for seconds
            spec = check_against_artifacts(spec, checkpoint, eval_set, services)
            if second is not None:
                check_validation_set(spec, eval_set, second, services)
        else:
            _no_artifacts(body)
        job = _insert_job(services, session, spec, body, owner, key, digest)
        return _accepted(response, job)


def _no_artifacts(body: TuneRequest) -> None:
    """An energy job names no checkpoint or eval set."""
    for field in ("checkpoint_id", "eval_set_id", "validate_eval_set_id"):
        if getattr(body, field) is not None:
            raise InvalidInput(field, "an energy job uses no checkpoint or eval set")


def _insert_job(
    services: Services, session: Session, spec: TuneSpec, body: TuneRequest, owner: str, key: str | None, digest: str
) -> Job:
    """Create the study (baselines enqueued once) and the queued job row; a lost key race returns the winner's job."""
    from mdmtune.tuning.search import create_study

    job_id = new_id()
    study_name = f"mdmtune-job-{job_id}"
    if spec.objective != "frontier":  # a frontier job runs one in-memory search per budget, in its worker
        create_study(spec, services.optuna_storage, study_name)
    job = Job(
        id=job_id,
        owner_key_id=owner,
        status="queued",
        objective=spec.objective,
        request=spec.to_dict(),
        checkpoint_id=body.checkpoint_id if spec.objective in MODEL_OBJECTIVES else None,
        eval_set_id=body.eval_set_id if spec.objective in MODEL_OBJECTIVES else None,
        validate_eval_set_id=body.validate_eval_set_id if spec.objective == "quality" else None,
        idempotency_key=key,
        request_hash=digest,
        study_name=study_name,
        n_trials=spec.trials * len(spec.steps_list),  # a frontier job runs one search per budget
        timeout_seconds=body.timeout_seconds,
    )
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        _drop_study(services, study_name)
        winner = idempotency.earlier_job(session, owner, key, digest)
        if winner is None:
            raise
        return winner
    return job


def _drop_study(services: Services, study_name: str) -> None:
    import optuna

    with contextlib.suppress(KeyError):
        optuna.delete_study(study_name=study_name, storage=services.optuna_storage)


@router.get("/{job_id}", response_model=JobOut, summary="Status, progress and best so far")
def get_job(job_id: str, owner: str = Depends(current_owner), services: Services = Depends(get_services)) -> JobOut:
    with services.sessions() as session:
        return job_out(_job(session, job_id, owner))


@router.get("/{job_id}/best", response_model=BestOut, summary="The best schedule (409 until the job succeeded)")
def get_best(job_id: str, owner: str = Depends(current_owner), services: Services = Depends(get_services)) -> BestOut:
    with services.sessions() as session:
        job = _job(session, job_id, owner, with_result=True)
    if job.status != "succeeded":
        raise Problem(409, f"job is {job.status}; the best schedule exists once it succeeded", "status")
    if job.objective == "frontier":
        raise Problem(409, f"a frontier job has a winner per budget, not one schedule: GET /v1/tune/{job.id}/frontier")
    return best_out(job)


@router.get(
    "/{job_id}/frontier",
    summary="A frontier job's result (409 until it succeeded)",
    description="The document `mdmtune frontier --json` prints: {frontier: [{budget, winner, points}], ...}.",
)
def get_frontier(
    job_id: str, owner: str = Depends(current_owner), services: Services = Depends(get_services)
) -> dict[str, Any]:
    with services.sessions() as session:
        job = _job(session, job_id, owner, with_result=True)
    if job.objective != "frontier":
        raise Problem(404, f"job {job_id!r} is a {job.objective} job, not a frontier job", "id")
    if job.status != "succeeded":
        raise Problem(409, f"job is {job.status}; the frontier exists once it succeeded", "status")
    return job.result or {}


@router.get("/{job_id}/trials", response_model=TrialsPage, summary="Every trial, paginated")
def get_trials(
    job_id: str,
    limit: int = Query(100, ge=1, le=MAX_PAGE, description="Trials per page."),
    offset: int = Query(0, ge=0, description="Trials to skip (ordered by trial number)."),
    owner: str = Depends(current_owner),
    services: Services = Depends(get_services),
) -> TrialsPage:
    from mdmtune.workers.jobs import list_trials

    with services.sessions() as session:
        job = _job(session, job_id, owner)
    trials = list_trials(services.optuna_storage, job.study_name)
    page = trials[offset : offset + limit]
    items = [TrialOut(**trial) for trial in page]
    next_offset = offset + limit if offset + limit < len(trials) else None
    return TrialsPage(items=items, total=len(trials), limit=limit, offset=offset, next_offset=next_offset)


@router.post("/{job_id}/cancel", status_code=202, response_model=JobOut, summary="Cancel a job")
def cancel_job(job_id: str, owner: str = Depends(current_owner), services: Services = Depends(get_services)) -> JobOut:
    """A queued job is cancelled at once; a running one at its worker's next step boundary; a finished one: 409."""
    with services.sessions() as session:
        return _cancel(session, _job(session, job_id, owner))


def _cancel(session: Session, job: Job) -> JobOut:
    if job.status in ("succeeded", "failed"):
        raise Problem(409, f"job already {job.status}", "status")
    now = utcnow()
    session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == "queued")
        .values(status="cancelled", cancel_requested=True, finished_at=now, updated_at=now)
    )
    session.execute(
        update(Job).where(Job.id == job.id, Job.status == "running").values(cancel_requested=True, updated_at=now)
    )
    session.commit()
    session.refresh(job)
    return job_out(job)
