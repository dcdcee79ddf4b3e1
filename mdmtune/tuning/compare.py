"""Several schedules on one eval set, side by side: `compare(...) -> Comparison` (what `mdmtune compare` prints).

Why: a tuned schedule is worth deploying only if it still wins on the data the user will run, and `mdmtune sample`
scores one schedule with no interval. Here every schedule is sampled on the same records with the same noise (the
seed of a record and replicate is the same for every schedule: common random numbers), so differences are paired.
Each schedule is sampled in its own `evaluate` call with the same batch size, exactly as `mdmtune sample` runs it:
its per-record scores and its NFEs are the ones `sample` reports. Reported: each schedule's mean score with its
Wilson 95% interval, its paired difference to the baseline with a paired bootstrap 95% interval (the tuner's
confirm-split statistics, mdmtune.tuning.stats), the NFEs, and the per-group breakdown (mdmtune.tuning.groups).
Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mdmtune.core import schedules
from mdmtune.core.schedules import NAMES, Schedule
from mdmtune.errors import InvalidInput
from mdmtune.tuning.groups import GroupBreakdown, breakdown, record_strata
from mdmtune.tuning.stats import paired

if TYPE_CHECKING:
    from mdmtune.data.evalsets import EvalSet
    from mdmtune.metrics import Metric
    from mdmtune.models.base import Denoiser
    from mdmtune.sampling import SamplerSettings
    from mdmtune.tuning.evaluation import EncodedSet

MAX_SCHEDULES = 32
"""More than this in one comparison is a search: use `mdmtune tune`."""


@dataclass(frozen=True)
class NamedSchedule:
    """A schedule under the name the user wrote for it ("linear", "0.3475:0.7776")."""

    name: str
    schedule: Schedule


@dataclass
class ScheduleComparison:
    name: str
    a: float | None
    b: float | None
    """None for sine, which is outside the Beta family."""
    score: float
    ci: list[float]
    """Wilson 95% interval of the mean score."""
    diff_vs_baseline: float
    diff_ci: list[float]
    """Paired bootstrap 95% interval of score - baseline score ([0, 0] for the baseline itself)."""
    nfe: int
    """Model calls to sample the whole set under this schedule alone (as `mdmtune sample` reports them)."""
    nfe_per_record: float


@dataclass
class Comparison:
    baseline: str
    schedules: list[ScheduleComparison]
    groups: GroupBreakdown
    steps: int
    metric: str
    records: int
    replicates: int
    seed: int
    eval_set_sha256: str
    nfe: int
    """Model calls of the whole comparison."""
    per_record: dict[str, list[float]] = field(default_factory=dict)
    """Schedule name -> per-record score (replicates averaged), in the eval set's order."""
    record_ids: list[str | int] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)
    """How the checkpoint was read and the records wrapped (see QualityObjective.model_report)."""


def parse_schedules(text: str) -> list[NamedSchedule]:
    """ "linear,cos2,0.3475:0.7776" -> named schedules; a name from NAMES or a Beta point "a:b"."""
    parts = [part.strip() for part in str(text).split(",")]
    if not parts or any(not part for part in parts):
        raise InvalidInput("schedules", f"a comma-separated list of {'|'.join(NAMES)} or a:b, got {text!r}")
    if len(parts) > MAX_SCHEDULES:
        raise InvalidInput("schedules", f"at most {MAX_SCHEDULES} schedules, got {len(parts)}")
    out = [NamedSchedule(part, _one_schedule(part)) for part in parts]
    seen = set()
    for item in out:
        if item.name in seen:
            raise InvalidInput("schedules", f"{item.name!r} is listed twice")
        seen.add(item.name)
    return out


def _one_schedule(part: str) -> Schedule:
    if part in NAMES:
        return schedules.named(part)
    pieces = part.split(":")
    if len(pieces) != 2:
        raise InvalidInput("schedules", f"{part!r} is neither one of {'|'.join(NAMES)} nor a Beta point a:b")
    try:
        a, b = (float(p) for p in pieces)
    except ValueError:
        raise InvalidInput("schedules", f"{part!r}: a and b must be numbers") from None
    try:
        return schedules.beta(a, b)
    except InvalidInput as error:
        raise InvalidInput("schedules", f"{part!r}: {error.message}") from None


def with_baseline(items: Sequence[NamedSchedule], baseline: str) -> list[NamedSchedule]:
    """`items` with the baseline in it: a name already listed, or added in front (it must then be a schedule name
    or an a:b point)."""
    if any(item.name == baseline for item in items):
        return list(items)
    try:
        added = NamedSchedule(baseline, _one_schedule(baseline))
    except InvalidInput as error:
        raise InvalidInput("baseline", error.message) from None
    if len(items) + 1 > MAX_SCHEDULES:
        raise InvalidInput("schedules", f"at most {MAX_SCHEDULES} schedules with the baseline")
    return [added, *items]


@dataclass
class SampledScores:
    """Per-record scores [S, R] (replicates averaged) of S schedules, and each schedule's NFEs."""

    scores: np.ndarray
    nfe: list[int]
    nfe_per_record: list[float]


def sample_scores(
    denoiser: Denoiser,
    encoded: EncodedSet,
    items: Sequence[Schedule],
    steps: int,
    settings: SamplerSettings,
    metric: Metric,
    *,
    seed: int = 0,
    replicates: int = 1,
    batch_size: int = 64,
    on_schedule: Callable[[int, int], None] | None = None,
) -> SampledScores:
    """Each schedule in its own evaluate call (as `mdmtune sample` runs it), same records and seeds for all."""
    from mdmtune.tuning.evaluation import evaluate

    if not metric.per_record:
        raise InvalidInput("metric", f"{metric.name} scores a whole set; comparing needs a per-record metric")
    rows, nfe, per_record = [], [], []
    for done, schedule in enumerate(items):
        result = evaluate(
            denoiser, encoded, [schedule], steps, settings, metric, replicates=replicates, seed=seed,
            batch_size=batch_size,
        )  # fmt: skip
        rows.append(result.scores[0].mean(axis=1))
        nfe.append(int(result.nfe))
        per_record.append(float(result.row_nfe[0].mean()))
        if on_schedule is not None:
            on_schedule(done + 1, len(items))
    return SampledScores(np.stack(rows), nfe, per_record)


def compare(
    denoiser: Denoiser,
    eval_set: EvalSet,
    items: Sequence[NamedSchedule],
    steps: int,
    settings: SamplerSettings,
    metric: str,
    *,
    baseline: str = "linear",
    gen_length: int | None = None,
    mask_symbol: str | None = None,
    seed: int = 0,
    replicates: int = 1,
    batch_size: int = 64,
    resamples: int = 10_000,
    on_schedule: Callable[[int, int], None] | None = None,
    add_special_tokens: bool = True,
    chat_template: bool = False,
) -> Comparison:
    """Sample every schedule on every record of `eval_set` (an EvalSet) and compare each with the baseline."""
    from mdmtune.metrics import get_metric
    from mdmtune.tuning.evaluation import encode_records
    from mdmtune.tuning.quality_objective import model_report

    items = with_baseline(items, baseline)
    scorer = get_metric(metric)
    scorer.check_records(eval_set.records)
    encoded = encode_records(
        denoiser,
        eval_set,
        gen_length=gen_length,
        mask_symbol=mask_symbol,
        add_special_tokens=add_special_tokens,
        chat_template=chat_template,
    )
    sampled = sample_scores(
        denoiser, encoded, [i.schedule for i in items], steps, settings, scorer,
        seed=seed, replicates=replicates, batch_size=batch_size, on_schedule=on_schedule,
    )  # fmt: skip
    names = [item.name for item in items]
    base = names.index(baseline)
    rows = [_row(item, sampled, s, base, resamples, seed) for s, item in enumerate(items)]
    pairs = [(s, base) for s in range(len(items)) if s != base]
    strata = record_strata(encoded, np.arange(len(encoded)))
    return Comparison(
        baseline=baseline,
        schedules=rows,
        groups=breakdown(sampled.scores, names, pairs, strata, resamples=resamples, seed=seed),
        steps=steps,
        metric=scorer.name,
        records=len(encoded),
        replicates=replicates,
        seed=seed,
        eval_set_sha256=eval_set.sha256,
        nfe=sum(sampled.nfe),
        per_record={n: sampled.scores[i].tolist() for i, n in enumerate(names)},
        record_ids=[r.id for r in eval_set.records],
        model=model_report(denoiser, encoded),
    )


def _row(
    item: NamedSchedule, sampled: SampledScores, s: int, base: int, resamples: int, seed: int
) -> ScheduleComparison:
    """One schedule against the baseline (the baseline against itself: a zero difference, interval [0, 0])."""
    pair = paired(sampled.scores[s], sampled.scores[base], resamples=resamples, seed=seed)
    return ScheduleComparison(
        name=item.name,
        a=item.schedule.a,
        b=item.schedule.b,
        score=pair.score,
        ci=pair.ci.as_list(),
        diff_vs_baseline=pair.diff,
        diff_ci=pair.diff_ci.as_list(),
        nfe=sampled.nfe[s],
        nfe_per_record=sampled.nfe_per_record[s],
    )
