"""What every metric is: a named scorer with one interface, whether it scores each output or only a whole set.

Most metrics score one output against its record (`Metric.score`), and a set's score is their mean; a set-level
metric (toy_tv) only has `Metric.aggregate`, because a distance between distributions needs all outputs at once.
Both kinds answer `aggregate(outputs, records)`, so evaluation code treats every metric alike, and the tuner's paired
statistics use `score` where `per_record` is true. `check_records` lets a job refuse a record the metric cannot score
before any model call is spent. Pure Python: never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mdmtune.data.evalsets import EvalRecord
from mdmtune.errors import InvalidInput

RecordScore = Callable[[str, EvalRecord], float]
ManyScore = Callable[[Sequence[str], Sequence[EvalRecord]], list[float]]
ManyReasons = Callable[[Sequence[str], Sequence[EvalRecord]], list[str]]
SetScore = Callable[[Sequence[str], Sequence[EvalRecord]], float]
RecordCheck = Callable[[EvalRecord], None]


@dataclass(frozen=True)
class Metric:
    """A named scorer; higher is better, scores lie in [0, 1]."""

    name: str
    description: str
    record_score: RecordScore | None = None
    set_score: SetScore | None = None
    record_check: RecordCheck | None = None
    many_score: ManyScore | None = None
    """Per-record scores of many outputs at once (pass_at_1 runs its programs in parallel); else a loop of score."""
    many_reasons: ManyReasons | None = None
    """Why each output scored what it did (pass_at_1: the sandbox's verdict); None for metrics without reasons."""

    @property
    def per_record(self) -> bool:
        """True when each output has its own score (and a set's score is their mean)."""
        return self.record_score is not None

    def score(self, output: str, record: EvalRecord) -> float:
        """The score of one decoded output; InvalidInput(field="metric") for a set-level metric."""
        if self.record_score is None:
            raise InvalidInput("metric", f"{self.name} is a set-level metric: score a whole set with aggregate()")
        return float(self.record_score(output, record))

    def score_many(self, outputs: Sequence[str], records: Sequence[EvalRecord]) -> list[float]:
        """The per-record scores of many outputs, in order: what evaluation and `mdmtune score` both call."""
        if self.many_score is not None and self.record_score is not None:
            return [float(v) for v in self.many_score(outputs, records)]
        return [self.score(o, r) for o, r in zip(outputs, records, strict=True)]

    def reasons(self, outputs: Sequence[str], records: Sequence[EvalRecord]) -> list[str] | None:
        """Each output's reason ("passed", "failed: AssertionError", "timed out", ...), or None when the metric
        gives none. Asked after scoring, it costs nothing more (pass_at_1 remembers its verdicts)."""
        if self.many_reasons is None:
            return None
        return list(self.many_reasons(outputs, records))

    def aggregate(self, outputs: Sequence[str], records: Sequence[EvalRecord]) -> float:
        """The score of a whole set: the mean of per-record scores, or the set-level value."""
        if len(outputs) != len(records) or not records:
            raise InvalidInput(
                "outputs",
                f"need one output per record and at least one; got {len(outputs)} outputs for {len(records)} records",
            )
        if self.set_score is not None:
            return float(self.set_score(outputs, records))
        return sum(self.score_many(outputs, records)) / len(records)

    def check_records(self, records: Sequence[EvalRecord]) -> None:
        """Raise InvalidInput naming the first record this metric cannot score (before any sampling is paid for)."""
        if self.record_check is not None:
            for record in records:
                self.record_check(record)


def score_outputs(metric: Metric, outputs: Sequence[str], records: Sequence[EvalRecord]) -> tuple[np.ndarray, float]:
    """Per-record scores [R] (NaN for a set-level metric) and the set's score: the one scoring path of the tuner,
    `mdmtune sample` and `mdmtune score`."""
    if not metric.per_record:
        return np.full(len(records), np.nan), metric.aggregate(outputs, records)
    scores = np.asarray(metric.score_many(outputs, records), dtype=np.float64)
    return scores, float(scores.mean())
