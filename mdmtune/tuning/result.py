"""What a tuning job reports: `TuneResult` and its parts, plain dataclasses.

`result.to_json()` (mdmtune.jsonsafe) turns one into the tune JSON of README.md: `best` (`a`, `b`, `score`, and
for quality its `ci`), `baselines` (name -> `a`, `b`, `score`, `diff_ci`), `trials` (`a`, `b`, `value`, `state`),
`nfe`, `objective`, `steps`; plus the wall time, the count plan of the best schedule and the confirm-split details.
For the energy objective `score` is the N-step energy (lower is better) and there are no intervals (it is exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # groups pulls in scipy; the CLI imports these types at start-up
    from mdmtune.tuning.groups import GroupBreakdown


@dataclass
class BestSchedule:
    a: float | None
    b: float | None
    score: float
    """Quality: mean score on the confirm split. Energy: E_N."""
    ci: list[float] | None = None
    """Quality: Wilson 95% interval of the confirm score."""
    name: str = ""
    reasons: dict[str, int] | None = None
    """Quality with a metric that gives reasons (pass_at_1): the confirm outputs counted by reason
    ("passed", "failed: AssertionError", "timed out", ...)."""
    search_value: float | None = None
    """The trial's value in the search (quality: mean on the search split; pruned never wins)."""
    trial_number: int | None = None


@dataclass
class BaselineScore:
    a: float | None
    b: float | None
    """None for sine, which is outside the Beta family."""
    score: float
    diff: float | None = None
    """best.score - score (quality: higher is better; energy: negative means the best has less energy)."""
    diff_ci: list[float] | None = None
    """Quality: paired bootstrap 95% interval of the difference, records resampled with their pairs."""
    ci: list[float] | None = None
    nfe_per_record: float | None = None
    """An adaptive decoder scored as a rival (the job's `decoder`): its mean model calls per confirm record."""


@dataclass
class TrialRecord:
    number: int
    a: float | None
    b: float | None
    value: float | None
    state: str
    baseline: str | None = None


@dataclass
class Candidate:
    """A top search trial re-scored on the confirm split."""

    a: float
    b: float
    search_value: float
    confirm_score: float
    trial_number: int


@dataclass
class CountPlan:
    """K_k for the best schedule at the job's steps: one list, or one per semi-autoregressive block."""

    masked: int
    counts: list[int] | None = None
    block_counts: list[list[int]] | None = None


@dataclass
class Validation:
    """The best schedule and the baselines re-scored on a second eval set once the search ended (every record of
    it, same sampler settings and seed): does the confirm split's win hold on other data?"""

    eval_set_sha256: str
    records: int
    best: BestSchedule
    """Its score and Wilson 95% interval on the second set."""
    baselines: dict[str, BaselineScore]
    """diff = best - baseline on the second set, with its paired bootstrap 95% interval."""
    groups: GroupBreakdown
    nfe: int


@dataclass
class TuneResult:
    objective: str
    steps: int
    best: BestSchedule
    baselines: dict[str, BaselineScore]
    trials: list[TrialRecord]
    nfe: int
    """Model forward passes: the search (every run on this study) plus the confirm re-scoring. 0 for energy."""
    wall_time_s: float
    n_trials: int
    alpha: list[float] = field(default_factory=list)
    """alpha of the best schedule on the N-step grid."""
    plan: CountPlan | None = None
    nfe_search: int = 0
    nfe_confirm: int = 0
    weight: list[float] | None = None
    """Energy objective: (weight_a, weight_b)."""
    metric: str | None = None
    search_records: int = 0
    confirm_records: int = 0
    candidates: list[Candidate] = field(default_factory=list)
    study_name: str | None = None
    figures: dict[str, str] = field(default_factory=dict)
    """Figure kind -> path, filled in by whoever drew them (the CLI)."""
    model: dict[str, Any] | None = None
    """Quality: how the checkpoint was read (format, family, mask and end ids, shift) and the records' template."""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (non-finite floats as "inf", "-inf", "nan"): what result.json and a job's row hold."""
        from mdmtune.jsonsafe import to_jsonable

        return to_jsonable(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TuneResult:
        """The typed result again, from to_json's output (fields added later default when absent)."""
        from mdmtune.jsonsafe import from_jsonable
        from mdmtune.tuning.groups import GroupBreakdown

        return from_jsonable(cls, data, {"GroupBreakdown": GroupBreakdown, "Validation": Validation})

    groups: GroupBreakdown | None = None
    """Quality: the confirm split by strata of its records (group field, masked count or prompt length): each
    group's scores and the best's paired difference to each baseline; `losses` names where the best loses."""
    validation: Validation | None = None
    """Quality, when a second eval set was given: the best and the baselines re-scored on it."""
    warnings: list[str] = field(default_factory=list)
    """Plain-words shift warnings: the best wins overall but loses in a group, or loses on the second set."""


@dataclass
class SweepPoint:
    steps: int
    tuned: float
    tuned_ci: list[float] | None
    baselines: dict[str, float]


@dataclass
class SweepResult:
    """A steps sweep: one TuneResult per N, quality vs steps, and the step savings against linear."""

    objective: str
    steps: list[int]
    results: list[TuneResult]
    points: list[SweepPoint]
    linear_steps: int
    """The largest N: the reference cost of linear."""
    tuned_steps: int | None
    """Fewest N at which the tuned schedule matches linear at the largest N (within the tuned score's CI)."""
    step_savings: float | None
    """1 - tuned_steps / linear_steps."""
    nfe: int
    wall_time_s: float
    figures: dict[str, str] = field(default_factory=dict)
