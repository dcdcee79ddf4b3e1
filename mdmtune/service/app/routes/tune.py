"""Tuning jobs: create (202 + Location, Idempotency-Key), read, best schedule, trials, cancel.

Thin: submission, cancellation and trial listing are `mdmtune.service.workers.jobs`'s (the one module that owns them,
also used by the tests and benchmarks); these routes add ownership, idempotency and the HTTP shapes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from mdmtune.service.app import idempotency
from mdmtune.service.app.deps import Services, current_owner, get_services
from mdmtune.service.app.jobs_view import best_out, job_out
from mdmtune.service.app.problems import Problem, problem_responses
from mdmtune.service.app.schemas import BestOut, JobOut, TrialOut, TrialsPage, TuneRequest
from mdmtune.service.db.models import Job
from mdmtune.service.workers import jobs
from mdmtune.tuning.spec import TuneSpec

router = APIRouter(prefix="/v1/tune", tags=["tune"], responses=problem_responses(400, 401, 404, 409, 422))

MAX_PAGE = 1000


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
        spec = TuneSpec.from_mapping(body.spec_fields())
        try:
            job = jobs.submit_job(
                session,
                services.optuna_storage,
                spec,
                owner_key_id=owner,
                checkpoint_id=body.checkpoint_id,
                eval_set_id=body.eval_set_id,
                validate_eval_set_id=body.validate_eval_set_id,
                artifact_dir=services.settings.resolved_artifact_dir,
                idempotency_key=key,
                request_hash=digest,
                timeout_seconds=body.timeout_seconds,
            )
        except IntegrityError:  # a concurrent request with the same Idempotency-Key won: answer with its job
            winner = idempotency.earlier_job(session, owner, key, digest)
            if winner is None:
                raise
            job = winner
        return _accepted(response, job)


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
    with services.sessions() as session:
        job = _job(session, job_id, owner)
    trials = jobs.list_trials(services.optuna_storage, job.study_name)
    page = trials[offset : offset + limit]
    items = [TrialOut(**trial) for trial in page]
    next_offset = offset + limit if offset + limit < len(trials) else None
    return TrialsPage(items=items, total=len(trials), limit=limit, offset=offset, next_offset=next_offset)


@router.post("/{job_id}/cancel", status_code=202, response_model=JobOut, summary="Cancel a job")
def cancel_job(job_id: str, owner: str = Depends(current_owner), services: Services = Depends(get_services)) -> JobOut:
    """A queued job is cancelled at once; a running one at its worker's next step boundary; a finished one: 409."""
    with services.sessions() as session:
        try:
            return job_out(jobs.cancel_job(session, _job(session, job_id, owner)))
        except jobs.JobConflict as error:
            raise Problem(409, str(error), "status") from None
