"""What a tuning job reports: `TuneResult` and its parts, plain dataclasses.

`result.to_json()` (mdmtune.data.jsonsafe) turns one into the tune JSON of README.md: `best` (`a`, `b`, `score`, and
for quality its `ci`), `baselines` (name -> `a`, `b`, `score`, `diff_ci`), `trials` (`a`, `b`, `value`, `state`),
`nfe`, `objective`, `steps`; plus the wall time, the count plan of the best schedule and the confirm-split details.
For the energy objective `score` is the N-step energy (lower is better) and there are no intervals (it is exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mdmtune.data import display
from mdmtune.tuning.groups import GroupBreakdown
from mdmtune.tuning.stats import Paired


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

    def __str__(self) -> str:
        """'a=0.3475 b=0.7776, score 0.783 (95% CI [0.612, 0.893])' (an energy best has no interval: its E_N)."""
        where = f"a={display.parameter(self.a)} b={display.parameter(self.b)}" if self.a is not None else self.name
        if self.ci is None:
            return f"{where}, value {display.energy(self.score)}"
        return f"{where}, score {display.score(self.score)} (95% CI {display.interval(self.ci)})"


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

    @classmethod
    def against_best(
        cls, pair: Paired, a: float | None, b: float | None, nfe_per_record: float | None = None
    ) -> BaselineScore:
        """The baseline as the reference of `pair` (best against this baseline): its own score and interval,
        and best - baseline."""
        return cls(
            a=a,
            b=b,
            score=pair.reference,
            diff=pair.diff,
            diff_ci=pair.diff_ci.as_list(),
            ci=pair.reference_ci.as_list(),
            nfe_per_record=nfe_per_record,
        )


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

    def lines(self) -> list[str]:
        """The plan in words: one line, or a heading and one line per block."""
        if self.block_counts:
            steps = len(self.block_counts[0])
            head = (
                f"per-step plan: tokens unmasked at each step, {len(self.block_counts)} blocks of {steps} steps "
                f"({self.masked} masked in all)"
            )
            return [head, *(f"  block {n}: {_numbers(block)}" for n, block in enumerate(self.block_counts, start=1))]
        counts = self.counts or []
        return [
            f"per-step plan: tokens unmasked at each of {len(counts)} steps ({self.masked} masked): {_numbers(counts)}"
        ]

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _numbers(values: list[int]) -> str:
    return " ".join(str(v) for v in values)


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
        from mdmtune.data.jsonsafe import to_jsonable

        return to_jsonable(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TuneResult:
        """The typed result again, from to_json's output (fields added later default when absent)."""
        from mdmtune.data.jsonsafe import from_jsonable

        return from_jsonable(cls, data)

    groups: GroupBreakdown | None = None
    """Quality: the confirm split by strata of its records (group field, masked count or prompt length): each
    group's scores and the best's paired difference to each baseline; `losses` names where the best loses."""
    validation: Validation | None = None
    """Quality, when a second eval set was given: the best and the baselines re-scored on it."""
    warnings: list[str] = field(default_factory=list)
    """Plain-words shift warnings: the best wins overall but loses in a group, or loses on the second set."""

    def __str__(self) -> str:
        """What `print(result)` shows: the best against each baseline, the per-step plan, the warnings."""
        energy = self.objective == "energy"
        head = f"{self.objective} tune, N = {self.steps}"
        if energy and self.weight is not None:
            head += f", weight Beta({display.parameter(self.weight[0])}, {display.parameter(self.weight[1])})"
        if self.metric:
            head += f", metric {self.metric}, {self.confirm_records} confirm records"
        best = self.best
        if energy:
            best_text = f"a={display.parameter(best.a)} b={display.parameter(best.b)}, E_N {display.energy(best.score)}"
        else:
            best_text = str(best)
        lines = [head, f"  best     {best_text}"]
        for name, base in self.baselines.items():
            where = f"a={display.parameter(base.a)} b={display.parameter(base.b)}" if base.a is not None else "-"
            if energy:
                text = f"{where}, E_N {display.energy(base.score)}, best - this {display.energy(base.diff)}"
            else:
                text = f"{where}, score {display.score(base.score)}"
                if base.ci:
                    text += f" (95% CI {display.interval(base.ci)})"
                if base.diff is not None:
                    text += f", best - this {display.diff(base.diff)} {display.interval(base.diff_ci, signed=True)}"
            lines.append(f"  {name:8s} {text}".rstrip())
        if self.plan is not None:
            lines += self.plan.lines()
        lines += [f"warning: {warning}" for warning in self.warnings]
        return "\n".join(lines)


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

    def __str__(self) -> str:
        """Each N's result, then the step savings against linear."""
        parts = [str(result) for result in self.results]
        if self.tuned_steps is not None and self.step_savings is not None:
            parts.append(
                f"step savings: tuned at N = {self.tuned_steps} matches linear at N = {self.linear_steps} "
                f"({100 * self.step_savings:.0f}% fewer steps)"
            )
        return "\n".join(parts)
