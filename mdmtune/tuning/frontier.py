"""The quality-per-NFE frontier: at each budget B of model calls per record, which decoding policy wins, by how much.

At every budget B (`spec.budgets`) six points compete on the same records and seeds:
- schedule: the tuned Beta schedule at N = B (the ordinary search: `run_search` + `finalize`, its confirm winner),
  linear and cos2 at N = B (a schedule's calls per record are the steps at which its plan commits something, <= B);
- threshold: the Fast-dLLM decoder with the tau of best search-split score among those whose mean calls per record
  on the search split are at most B;
- entropy: the EB-sampler decoder with gamma chosen likewise;
- hybrid: diffusers' BlockRefinementScheduler on the budget's tuned plan (the floor, N = B) plus every position
  above tau, tau the best search-split score of HYBRID_LADDER (the threshold ladder and 1.0, which is the tuned
  schedule itself); it never needs more than B calls, so every tau keeps to the budget.
Everything is chosen on the search split and reported on the confirm split (the split of `split_records`, as for
`tune`): score, Wilson 95% interval, mean calls per record, and the paired bootstrap interval of the difference to
linear at the same budget. The winner is the best confirm score among the points that kept to the budget on the
confirm split too (a tie goes to the fewer calls, then to the simpler policy: linear, cos2, tuned, threshold,
entropy, hybrid).

Cost, shared where it can be: one search per budget, each with its batches of trials and successive halving, the
score cache shared across budgets; the adaptive decoders are swept once for every budget, by successive halving over
parameter values: a ladder of thresholds (bounds) on a first rung of the search split, several values per model
batch, stopped once they need far more calls than the largest budget; bisection between the values that bracket
each budget; then only each budget's finalists on the whole search split, and each budget's pick on the confirm
split. No (value, record) is sampled twice.
Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna

from mdmtune.core import schedules
from mdmtune.core.plans import count_plans
from mdmtune.core.schedules import Schedule
from mdmtune.errors import InvalidInput
from mdmtune.tuning.adaptive_sweep import AdaptiveSweep
from mdmtune.tuning.objective import EvaluationStopped
from mdmtune.tuning.quality_objective import QualityObjective
from mdmtune.tuning.spec import TuneSpec
from mdmtune.tuning.stats import paired

if TYPE_CHECKING:
    from mdmtune.data.evalsets import EvalSet
    from mdmtune.models.base import Denoiser
    from mdmtune.tuning.cache import ScoreCache

THRESHOLD_LADDER: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999)
"""Confidence thresholds, fewest calls first (tau = 0 commits a whole block per call)."""
ENTROPY_LADDER: tuple[float, ...] = (1000.0, 10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.001)
"""Entropy bounds in nats, fewest calls first (1000 commits a whole block per call)."""
REFINE_ROUNDS = 2
RUNG_MARGIN = 1.25
"""On the first rung, values needing more than this times the budget are not carried to the whole search split."""
HYBRID_LADDER: tuple[float, ...] = (*THRESHOLD_LADDER, 1.0)
"""The hybrid's taus on the tuned plan of a budget; 1.0 adds nothing to the floor (the tuned schedule itself)."""
PRIORITY = ("linear", "cos2", "tuned", "threshold", "entropy", "hybrid")
"""Tie order of the winner at equal score and calls: the simpler policy first."""


@dataclass
class FrontierPoint:
    """One policy at one budget, scored on the confirm split."""

    decoder: str
    """schedule | threshold | entropy | hybrid."""
    name: str
    """tuned | linear | cos2 | threshold | entropy | hybrid."""
    nfe_per_record: float
    """Mean model calls per confirm record (each record's calls as if sampled alone)."""
    score: float
    ci: list[float]
    diff_vs_linear: float
    diff_vs_linear_ci: list[float]
    within_budget: bool
    a: float | None = None
    b: float | None = None
    steps: int | None = None
    threshold: float | None = None
    entropy_bound: float | None = None
    search_score: float | None = None
    search_nfe_per_record: float | None = None


@dataclass
class BudgetResult:
    budget: int
    winner: FrontierPoint
    points: list[FrontierPoint]


@dataclass
class AdaptivePoint:
    """An adaptive decoder's parameter as measured on the search split (every value tried, for the figure)."""

    decoder: str
    parameter: float
    nfe_per_record: float
    score: float


@dataclass
class FrontierResult:
    frontier: list[BudgetResult]
    budgets: list[int]
    metric: str
    search_records: int
    confirm_records: int
    confirm_ids: list[str | int]
    """The eval set's ids of the confirm records, where every point was scored (`mdmtune sample` on the whole set
    reproduces a point's score and calls on exactly these records)."""
    nfe: int
    """Model calls of the whole job (every budget, every decoder, search and confirm)."""
    row_nfe: int
    """The same cost counted per sampled row (what each row would cost alone): independent of the batch size."""
    nfe_by_part: dict[str, int]
    row_nfe_by_part: dict[str, int]
    sweeps: list[AdaptivePoint]
    wall_time_s: float
    seed: int
    figures: dict[str, str] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    """How the checkpoint was read and the records wrapped (QualityObjective.model_report)."""


def run_frontier(
    spec: TuneSpec,
    *,
    checkpoint: str | os.PathLike[str] | Denoiser,
    eval_set: str | os.PathLike[str] | EvalSet,
    cache: ScoreCache | None = None,
    checkpoint_sha: str | None = None,
    progress: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_budget: Callable[[int, int], None] | None = None,
) -> FrontierResult:
    """The whole frontier job in this process (library, CLI and the service's worker all call this).

    progress(message) narrates; on_budget(budgets done, model calls so far) after each budget; should_stop() is
    polled between model batches, and True raises EvaluationStopped (nothing is reported half-done)."""
    started = time.perf_counter()
    spec = spec.replace(objective="frontier")
    if spec.sampler != "count":
        raise InvalidInput("sampler", "the frontier compares count plans with adaptive decoders; use sampler count")
    budgets = list(spec.budgets)
    say = progress or (lambda message: None)
    base = QualityObjective.build(
        spec.replace(objective="quality", steps=budgets[0]),
        checkpoint=checkpoint,
        eval_set=eval_set,
        cache=cache,
        checkpoint_sha=checkpoint_sha,
    )
    sweeps = {d: AdaptiveSweep(base, d, should_stop) for d in ("threshold", "entropy")}
    _sweep_adaptive(sweeps, budgets, say)
    costs = _Costs(sweeps)
    budget_results: list[BudgetResult] = []
    for budget in budgets:
        budget_results.append(_tune_budget(spec, base, sweeps, budget, costs, should_stop, say))
        if on_budget is not None:
            on_budget(len(budget_results), sum(costs.nfe_by_part().values()))
    nfe_by_part, rows_by_part = costs.nfe_by_part(), costs.rows_by_part()
    return FrontierResult(
        frontier=budget_results,
        budgets=budgets,
        metric=base.metric,
        search_records=base.search_records,
        confirm_records=base.confirm_records,
        confirm_ids=[base.encoded.records[int(i)].id for i in base.confirm_indices],
        nfe=sum(nfe_by_part.values()),
        row_nfe=sum(rows_by_part.values()),
        nfe_by_part=nfe_by_part,
        row_nfe_by_part=rows_by_part,
        sweeps=[
            AdaptivePoint(decoder=d, parameter=v, nfe_per_record=c, score=s)
            for d, sweep in sweeps.items()
            for v, c, s in sweep.table(base.search_indices)
        ],
        wall_time_s=time.perf_counter() - started,
        seed=spec.seed,
        model=base.model_report(),
    )


class _Costs:
    """Model calls spent so far, by part of the job (the adaptive sweeps count their own)."""

    def __init__(self, sweeps: dict[str, AdaptiveSweep]) -> None:
        self.sweeps = sweeps
        self.schedule_search = self.schedule_confirm = self.schedule_rows = 0
        self.hybrid = {"nfe": 0, "row_nfe": 0}

    def nfe_by_part(self) -> dict[str, int]:
        return {
            "schedule_search": self.schedule_search,
            "schedule_confirm": self.schedule_confirm,
            "threshold": self.sweeps["threshold"].nfe,
            "entropy": self.sweeps["entropy"].nfe,
            "hybrid": self.hybrid["nfe"],
        }

    def rows_by_part(self) -> dict[str, int]:
        return {
            "schedule": self.schedule_rows,
            "threshold": self.sweeps["threshold"].row_nfe,
            "entropy": self.sweeps["entropy"].row_nfe,
            "hybrid": self.hybrid["row_nfe"],
        }


def _tune_budget(
    spec: TuneSpec,
    base: QualityObjective,
    sweeps: dict[str, AdaptiveSweep],
    budget: int,
    costs: _Costs,
    should_stop: Callable[[], bool] | None,
    say: Callable[[str], None],
) -> BudgetResult:
    """One budget: tune the Beta schedule at N = budget, then score every policy on the confirm split."""
    from mdmtune.tuning.search import create_study, run_search

    one = spec.replace(objective="quality", steps=budget, n_trials=spec.trials)
    objective = base.with_steps(budget)
    study = create_study(one, None, f"mdmtune-frontier-N{budget}")
    say(f"budget {budget}: tuning the Beta schedule at N = {budget} ({one.trials} trials)")
    if run_search(one, study, objective, should_stop=should_stop).stopped:
        raise EvaluationStopped(f"stopped while tuning the schedule at N = {budget}")
    points, confirm_nfe = _budget_points(one, study, objective, sweeps, budget, should_stop, costs.hybrid, say)
    costs.schedule_search += objective.nfe_spent - confirm_nfe
    costs.schedule_confirm += confirm_nfe
    costs.schedule_rows += objective.row_nfe_spent
    result = BudgetResult(budget=budget, winner=_winner(points), points=points)
    say(f"budget {budget}: winner {result.winner.name} ({result.winner.score:.3f})")
    return result


def _sweep_adaptive(sweeps: dict[str, AdaptiveSweep], budgets: list[int], say: Callable[[str], None]) -> None:
    """Successive halving over parameter values, as the Beta search does over (a, b):
    1. on a first rung of the search split (a 1/reduction_factor share), the ladder from the fewest calls up, stopped
       once a value needs more than RUNG_MARGIN x the largest budget; then REFINE_ROUNDS bisections between the
       values that bracket each budget;
    2. on the whole search split, only each budget's two best values within RUNG_MARGIN x budget and its bracket;
    3. each budget's pick (the best search score within the budget) on the confirm split.
    """
    objective = next(iter(sweeps.values())).objective
    search = objective.search_indices
    spec = objective.spec
    rung = search[: min(len(search), max(spec.min_rung_records, math.ceil(len(search) / spec.reduction_factor)))]
    ladders = {"threshold": THRESHOLD_LADDER, "entropy": ENTROPY_LADDER}
    for decoder, sweep in sweeps.items():
        say(f"{decoder} decoder: the ladder on {len(rung)} search records")
        _climb(sweep, ladders[decoder], rung, max(budgets) * RUNG_MARGIN)
        for _ in range(REFINE_ROUNDS):
            sweep.measure([m for m in (sweep.bracket_midpoint(b, rung) for b in budgets) if m is not None], rung)
        finalists = _finalists(sweep, budgets, rung)
        say(f"{decoder} decoder: {len(finalists)} values on all {len(search)} search records")
        sweep.measure(finalists, search)
        chosen = [v for v in (sweep.choose(b, search) for b in budgets) if v is not None]
        sweep.measure(chosen, objective.confirm_indices)  # every budget's pick on the confirm split, one evaluation


def _climb(sweep: AdaptiveSweep, ladder: tuple[float, ...], rung: np.ndarray, most: float) -> None:
    """The ladder in two halves, the careful half only when the cheap half stayed within `most` calls: each
    evaluation pays for its slowest row, so few large evaluations cost fewer calls than many small ones."""
    half = (len(ladder) + 1) // 2
    for part in (ladder[:half], ladder[half:]):
        sweep.measure(list(part), rung)
        if max(float(sweep.on(v, rung).calls.mean()) for v in part) > most:
            return


def _finalists(sweep: AdaptiveSweep, budgets: list[int], rung: np.ndarray) -> list[float]:
    """Per budget: the two best rung scores within RUNG_MARGIN x budget calls, and both ends of its bracket."""
    table = sweep.table(rung)
    out: set[float] = set()
    for budget in budgets:
        near = [r for r in table if r[1] <= budget * RUNG_MARGIN]
        out.update(r[0] for r in sorted(near, key=lambda r: (-r[2], r[1]))[:2])
        out.update(v for v in sweep.bracket(budget, rung) if v is not None)
    return sorted(out)


def _budget_points(
    spec: TuneSpec,
    study: optuna.Study,
    objective: QualityObjective,
    sweeps: dict[str, AdaptiveSweep],
    budget: int,
    should_stop: Callable[[], bool] | None,
    hybrid_cost: dict[str, int] | None = None,
    say: Callable[[str], None] | None = None,
) -> tuple[list[FrontierPoint], int]:
    """Every policy's point at this budget on the confirm split; returns them and the schedule confirm NFEs.
    The hybrid's sweep (on the tuned plan of this budget) adds its calls to hybrid_cost."""
    from mdmtune.tuning.confirmation import finalize

    before = objective.nfe_spent
    tuned = finalize(spec, study, objective, should_stop=should_stop)
    candidates = [
        ("tuned", schedules.beta(tuned.best.a, tuned.best.b)),
        ("linear", schedules.named("linear")),
        ("cos2", schedules.named("cos2")),
    ]
    scores, _ = objective.record_scores([s for _, s in candidates], objective.confirm_indices)
    confirm_nfe = objective.nfe_spent - before
    linear = scores[1]
    points = []
    for (name, schedule), row in zip(candidates, scores, strict=True):
        calls = _schedule_calls(objective, schedule, budget)
        point = _point(spec, row, linear, calls, budget, decoder="schedule", name=name)
        point.a, point.b, point.steps = float(schedule.a), float(schedule.b), budget
        if name == "tuned":
            point.search_score = tuned.best.search_value
        points.append(point)
    for decoder, sweep in sweeps.items():
        value = sweep.choose(budget, objective.search_indices)
        if value is None:
            continue  # not even one block per call fits: the budget is below the block count
        sweep.measure([value], objective.confirm_indices)
        measured = sweep.on(value, objective.confirm_indices)
        point = _point(spec, measured.scores, linear, measured.calls, budget, decoder=decoder, name=decoder)
        setattr(point, "threshold" if decoder == "threshold" else "entropy_bound", value)
        searched = sweep.on(value, objective.search_indices)
        point.search_score = float(searched.scores.mean())
        point.search_nfe_per_record = float(searched.calls.mean())
        points.append(point)
    points.append(_hybrid_point(spec, objective, candidates[0][1], linear, budget, should_stop, hybrid_cost, say))
    return points, confirm_nfe


def _hybrid_point(
    spec: TuneSpec,
    objective: QualityObjective,
    tuned: Schedule,
    linear: np.ndarray,
    budget: int,
    should_stop: Callable[[], bool] | None,
    cost: dict[str, int] | None,
    say: Callable[[str], None] | None,
) -> FrontierPoint:
    """The hybrid on the tuned plan at N = budget: HYBRID_LADDER on the whole search split (each tau costs at most
    the budget's calls per record), the best search score (ties: fewer calls) on the confirm split."""
    if say is not None:
        say(f"budget {budget}: hybrid decoder, {len(HYBRID_LADDER)} taus on the tuned plan")
    sweep = AdaptiveSweep(objective, "hybrid", should_stop, (tuned, budget))
    sweep.measure(list(HYBRID_LADDER), objective.search_indices)
    value = sweep.choose(budget, objective.search_indices)
    assert value is not None  # tau = 1 is the tuned plan itself, within the budget by construction
    sweep.measure([value], objective.confirm_indices)
    measured = sweep.on(value, objective.confirm_indices)
    point = _point(spec, measured.scores, linear, measured.calls, budget, decoder="hybrid", name="hybrid")
    point.threshold, point.a, point.b, point.steps = value, float(tuned.a), float(tuned.b), budget
    searched = sweep.on(value, objective.search_indices)
    point.search_score = float(searched.scores.mean())
    point.search_nfe_per_record = float(searched.calls.mean())
    if cost is not None:
        cost["nfe"] += sweep.nfe
        cost["row_nfe"] += sweep.row_nfe
    return point


def _point(
    spec: TuneSpec, scores: np.ndarray, linear: np.ndarray, calls: np.ndarray, budget: int, *, decoder: str, name: str
) -> FrontierPoint:
    pair = paired(scores, linear, resamples=spec.bootstrap_resamples, seed=spec.seed)
    per_record = float(np.mean(calls))
    return FrontierPoint(
        decoder=decoder,
        name=name,
        nfe_per_record=per_record,
        score=pair.score,
        ci=pair.ci.as_list(),
        diff_vs_linear=pair.diff,
        diff_vs_linear_ci=pair.diff_ci.as_list(),
        within_budget=per_record <= budget + 1e-9,
    )


def _schedule_calls(objective: QualityObjective, schedule: Schedule, steps: int) -> np.ndarray:
    """Calls per confirm record under the count sampler: the steps at which its plan commits something.

    That is the sampler's own rule (a row takes part in a call exactly when it commits), so it is read off the
    plans rather than sampled again (the scores came from the cache).
    """
    encoded, spec = objective.encoded, objective.spec
    if encoded.gen_length is not None:
        block = spec.block_length or encoded.gen_length
        n_blocks = encoded.gen_length // block
        plans = count_plans(schedule.on_grid(steps // n_blocks), [[block] * n_blocks])
        return np.full(len(objective.confirm_indices), float(np.count_nonzero(plans)))
    masked = np.asarray(encoded.masked)[objective.confirm_indices]
    plans = count_plans(np.tile(schedule.on_grid(steps), (masked.size, 1)), masked[:, None])
    return np.count_nonzero(plans, axis=(1, 2)).astype(np.float64)


def _winner(points: list[FrontierPoint]) -> FrontierPoint:
    eligible = [p for p in points if p.within_budget] or points
    return max(eligible, key=lambda p: (round(p.score, 12), -round(p.nfe_per_record, 9), -PRIORITY.index(p.name)))


def pareto_front(points: list[FrontierPoint]) -> list[FrontierPoint]:
    """Points no other point beats on both axes (fewer or equal calls and a higher or equal score, one strictly)."""
    front = []
    for p in points:
        dominated = any(
            q.nfe_per_record <= p.nfe_per_record
            and q.score >= p.score
            and (q.nfe_per_record < p.nfe_per_record or q.score > p.score)
            for q in points
        )
        if not dominated:
            front.append(p)
    return sorted(front, key=lambda p: p.nfe_per_record)
