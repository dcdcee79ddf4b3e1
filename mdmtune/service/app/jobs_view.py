"""How a `jobs` row is shown: progress with elapsed and eta, the best so far, and the best schedule's sampling plan.

Pure shaping of stored data (plus the core's schedules/plans), kept out of the routes so they stay thin.
"""

from __future__ import annotations

from datetime import datetime

from mdmtune.core import plans, schedules
from mdmtune.data.jsonsafe import to_jsonable
from mdmtune.service.app.schemas import BestOut, BestSoFar, BlockPlan, JobOut, ProgressOut, QualityOut
from mdmtune.service.db.models import Job, utcnow
from mdmtune.tuning.result import CountPlan, TuneResult

GAMMA_FORMULA = "gamma(t) = I_t(a, b), the regularized incomplete Beta function (CDF of Beta(a, b)) at t"
ALPHA_FORMULA = "alpha(t) = sin^2(pi/2 * I_t(a, b)); alpha(0) = 0, alpha(1) = 1"


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None:
        return None
    return max(0.0, ((end or utcnow()) - start).total_seconds())


def phase(job: Job) -> str:
    """queued, searching (trials running), confirming (the search is done; the best few are re-scored on the
    held-out split, or the energies written), finished (any end state)."""
    if job.status == "queued":
        return "queued"
    if job.status != "running":
        return "finished"
    return "confirming" if job.trials_done >= job.n_trials else "searching"


def progress(job: Job) -> ProgressOut:
    """Trials done of total, NFEs, elapsed since the first claim, and a linear eta while running."""
    elapsed = _seconds(job.started_at, job.finished_at)
    eta = None
    if job.status == "running" and elapsed is not None and 0 < job.trials_done < job.n_trials:
        eta = elapsed / job.trials_done * max(0, job.n_trials - job.trials_done)
    elif job.status in ("succeeded", "failed", "cancelled"):
        eta = 0.0
    return ProgressOut(
        trials_done=job.trials_done, n_trials=job.n_trials, nfe=job.nfe, elapsed_seconds=elapsed, eta_seconds=eta
    )


def job_out(job: Job) -> JobOut:
    best = None
    if job.best_params:
        best = BestSoFar(a=job.best_params.get("a"), b=job.best_params.get("b"), value=job.best_value)
    return JobOut(
        id=job.id,
        status=job.status,
        phase=phase(job),
        objective=job.objective,
        checkpoint_id=job.checkpoint_id,
        eval_set_id=job.eval_set_id,
        validate_eval_set_id=job.validate_eval_set_id,
        request=job.request,
        progress=progress(job),
        best=best,
        cancel_requested=job.cancel_requested,
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def block_plans(a: float, b: float, steps: int, gen_length: int | None, block_length: int | None) -> list[BlockPlan]:
    """The count plan per block (LLaDA's semi-autoregressive layout) for a completion of gen_length tokens."""
    if gen_length is None:
        return []
    block = block_length or gen_length
    n_blocks = plans.check_blocks(gen_length, block, steps)
    counts = plans.block_count_plans(schedules.beta(a, b), steps, [block] * n_blocks)
    return [BlockPlan(block=i, masked=block, counts=[int(c) for c in row]) for i, row in enumerate(counts)]


def _stored_plan(plan: CountPlan | None) -> list[BlockPlan] | None:
    """Infill jobs have no gen_length: show the plan the tuning run computed for its masked count."""
    if plan is None:
        return None
    rows = plan.block_counts or ([plan.counts] if plan.counts else [])
    return [BlockPlan(block=i, masked=int(sum(row)), counts=list(row)) for i, row in enumerate(rows)] or None


def best_out(job: Job) -> BestOut:
    """The tuned schedule of a succeeded job, ready to paste into a sampler (read from the typed stored result)."""
    result = TuneResult.from_json(job.result) if job.result else None
    best = result.best if result is not None else None
    a = float(best.a if best is not None and best.a is not None else (job.best_params or {}).get("a"))
    b = float(best.b if best is not None and best.b is not None else (job.best_params or {}).get("b"))
    request = job.request
    steps = int(request["steps"])
    grid = schedules.step_grid(steps)
    quality = None
    if job.objective == "quality" and best is not None:
        quality = QualityOut(score=best.score, ci=best.ci)
    return BestOut(
        job_id=job.id,
        objective=job.objective,
        a=a,
        b=b,
        gamma_formula=GAMMA_FORMULA,
        alpha_formula=ALPHA_FORMULA,
        steps=steps,
        gen_length=request.get("gen_length"),
        block_length=request.get("block_length"),
        t=[float(x) for x in grid],
        alpha=[float(x) for x in schedules.beta_alpha(grid, a, b)],
        plan=block_plans(a, b, steps, request.get("gen_length"), request.get("block_length"))
        or _stored_plan(result.plan if result is not None else None),
        value=to_jsonable(best.score if best is not None else job.best_value),
        quality=quality,
        baselines=result.baselines if result is not None else {},
        warnings=list(result.warnings) if result is not None else [],
        groups=result.groups if result is not None else None,
        validation=result.validation if result is not None else None,
        model=result.model if result is not None else None,
        result=result,
    )
