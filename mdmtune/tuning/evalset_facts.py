"""What a job's checks read of an eval set, computed once from its records: `EvalSetFacts`.

A job is checked against its eval set when it is submitted (does the metric score every record, does every infill
record hold the mask symbol, how many masks at most); reading the whole file for that on every submission made an
API node parse each set once per job. The service computes these facts when a set is uploaded and keeps them in
its row (JSON, `to_json`), so a submission reads a few numbers instead of the file:
- the declared metric, and for every registered metric whether it can score every record (else the first record's
  problem, as `Metric.check_records` reports it);
- infill sets: per mask symbol, the largest count in a record and the line of the first record without it, for the
  symbols the texts hold (every character but letters, digits and white space, and every bracketed token such as
  `[MASK]` or `<mask>`).
A metric whose check depends on this machine rather than on the records (math needs the math-verify package) and
any other mask symbol are not facts: the caller reads the records for them (`with_mask_symbol` adds a symbol).
Pure Python: never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypedDict

from mdmtune.data.evalsets import EvalRecord, EvalSet, where
from mdmtune.errors import InvalidInput
from mdmtune.metrics import METRIC_NAMES, get_metric, resolve_metric

MAX_SYMBOLS = 64
"""At most this many mask symbols are counted at upload (the first ones found); others are counted when asked."""
_SYMBOL = re.compile(r"\[[^\[\]\s]{1,40}\]|<[^<>\s]{1,40}>|[^\w\s]|_")


@dataclass(frozen=True)
class Problem:
    """Why a metric cannot score a set: the first record it refuses, as its check named it."""

    field: str
    message: str


@dataclass(frozen=True)
class MaskCount:
    """One mask symbol over an infill set's masked texts."""

    largest: int
    """The most occurrences in one record."""
    first_without: int | None
    """The line of the first record without it; None when every record holds it."""


FACTS_VERSION = 1
"""Bumped whenever what the facts hold or how they are computed changes (a metric's record check, the symbols
counted): stored facts of another version are computed again from the file, once, like a row stored without any."""


class FactsJson(TypedDict):
    version: int
    declared_metric: str | None
    metrics: dict[str, list[str] | None]
    mask_counts: dict[str, list[int | None]]


@dataclass(frozen=True)
class EvalSetFacts:
    """The facts of one eval set (see the module docstring)."""

    kind: str
    record_count: int
    declared_metric: str | None
    metrics: Mapping[str, Problem | None]
    """Metric name -> None (scores every record) or its problem; a metric missing here is not a fact."""
    mask_counts: Mapping[str, MaskCount] = field(default_factory=dict)

    @classmethod
    def of(cls, eval_set: EvalSet) -> EvalSetFacts:
        """Read every record once per metric (and once for the mask symbols)."""
        metrics: dict[str, Problem | None] = {}
        for name in METRIC_NAMES:
            known, problem = _metric_problem(name, eval_set.records)
            if known:
                metrics[name] = problem
        masks = _mask_counts(eval_set.records, _symbols(eval_set)) if eval_set.kind == "infill" else {}
        return cls(eval_set.kind, len(eval_set), eval_set.declared_metric, metrics, masks)

    def resolve_metric(self, name: str | None, records: Callable[[], EvalSet]) -> str:
        """The metric a job scores the set with, refused as `metrics.resolve_metric` refuses it (none named or
        declared, an unknown name, a record it cannot score). `records()` is read only for a metric that is not a
        fact."""
        metric = resolve_metric(name, _Declared(self.declared_metric))  # type: ignore[arg-type]
        problem = self.metric_problem(metric.name, records)
        if problem is not None:
            raise InvalidInput(
                "metric", f"{metric.name} cannot score this eval set: {problem.field}: {problem.message}"
            )
        return metric.name

    def metric_problem(self, name: str, records: Callable[[], EvalSet]) -> Problem | None:
        """Why metric `name` cannot score every record (None: it can); `records()` is read only when it is not a
        fact."""
        if name in self.metrics:
            return self.metrics[name]
        try:
            get_metric(name).check_records(records().records)
        except InvalidInput as error:
            return Problem(error.field, error.message)
        return None

    def with_mask_symbol(self, symbol: str, eval_set: EvalSet) -> EvalSetFacts:
        """These facts with `symbol` counted too (a symbol the upload did not count)."""
        counted = _mask_counts(eval_set.records, [symbol])
        return replace(self, mask_counts={**self.mask_counts, **counted})

    def to_json(self) -> FactsJson:
        return {
            "version": FACTS_VERSION,
            "declared_metric": self.declared_metric,
            "metrics": {n: None if p is None else [p.field, p.message] for n, p in self.metrics.items()},
            "mask_counts": {s: [c.largest, c.first_without] for s, c in self.mask_counts.items()},
        }

    @classmethod
    def stored(cls, kind: str, record_count: int, data: FactsJson | None) -> EvalSetFacts | None:
        """Facts as a row stores them; None when there are none or they are of another FACTS_VERSION."""
        if data is None or data.get("version") != FACTS_VERSION:
            return None
        return cls.from_json(kind, record_count, data)

    @classmethod
    def from_json(cls, kind: str, record_count: int, data: FactsJson) -> EvalSetFacts:
        metrics = {n: None if p is None else Problem(*p) for n, p in data["metrics"].items()}
        masks = {s: MaskCount(int(c[0] or 0), c[1]) for s, c in data["mask_counts"].items()}
        return cls(kind, record_count, data["declared_metric"], metrics, masks)


@dataclass(frozen=True)
class _Declared:
    """What `metrics.resolve_metric` reads of a set before its records: the declared metric (and no records, whose
    checks are facts already)."""

    declared_metric: str | None
    records: tuple[EvalRecord, ...] = ()


def _metric_problem(name: str, records: tuple[EvalRecord, ...]) -> tuple[bool, Problem | None]:
    """(is it a fact, the problem): a refusal that names no record comes from this machine, not from the set."""
    check = get_metric(name).record_check
    if check is None:
        return True, None
    for record in records:
        try:
            check(record)
        except InvalidInput as error:
            named = where(record) in error.field or where(record) in error.message
            return named, Problem(error.field, error.message)
    return True, None


def _symbols(eval_set: EvalSet) -> list[str]:
    """The candidate mask symbols of an infill set, in order of first appearance, at most MAX_SYMBOLS."""
    found: dict[str, None] = {}
    for record in eval_set.records:
        for symbol in _SYMBOL.findall(record.masked or ""):
            found.setdefault(symbol)
            if len(found) >= MAX_SYMBOLS:
                return list(found)
    return list(found)


def _mask_counts(records: tuple[EvalRecord, ...], symbols: list[str]) -> dict[str, MaskCount]:
    counts = {}
    for symbol in symbols:
        largest, first_without = 0, None
        for record in records:
            count = (record.masked or "").count(symbol)
            if count == 0 and first_without is None:
                first_without = record.line
            largest = max(largest, count)
        counts[symbol] = MaskCount(largest, first_without)
    return counts
