"""Scorers of decoded model outputs against eval records: a registry, one small function each.

Most metrics score one output against its record (`Metric.score`), and a set's score is their mean; a set-level
metric (toy_tv) only has `Metric.aggregate`, because a distance between distributions needs all outputs at once.
Both kinds answer `aggregate(outputs, records)`, so evaluation code treats every metric alike, and the tuner's paired
statistics use `score` where `per_record` is true. `check_records` lets a job refuse a record the metric cannot score
before any model call is spent. Pure Python: never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from mdmtune import code_metric as _code
from mdmtune import task_metrics as _tasks
from mdmtune import toy as _toy
from mdmtune.errors import InvalidInput
from mdmtune.evalsets import EvalRecord, EvalSet, where
from mdmtune.testbeds import sudoku as _sudoku

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


# exact_match ---------------------------------------------------------------------------------------------------


def exact_match(output: str, record: EvalRecord) -> float:
    """1 when the output equals the answer, surrounding white space ignored on both."""
    return float(output.strip() == record.answer.strip())


# numeric_match -------------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[-+]?(?:\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)")


def final_number(text: str) -> Decimal | None:
    """The number after the last '####' (GSM8K style) if there is one, else the last number in `text`.

    Thousands separators (1,234) are dropped; a trailing period ("42.") ends a sentence, not a fraction.
    """
    _head, mark, tail = text.rpartition("####")
    found = _NUMBER.findall(tail)
    if not found:
        return None
    number = found[0] if mark else found[-1]
    return Decimal(number.replace(",", "").rstrip(".") or "0")


def _check_numeric(record: EvalRecord) -> None:
    if final_number(record.answer) is None:
        raise InvalidInput(
            "answer", f"{where(record)}: numeric_match needs a number in the answer, got {record.answer!r}"
        )


def numeric_match(output: str, record: EvalRecord) -> float:
    """1 when the output's final number equals the answer's numerically (so "42.0" matches "42")."""
    _check_numeric(record)
    got = final_number(output)
    return float(got is not None and got == final_number(record.answer))


# regex ---------------------------------------------------------------------------------------------------------


def compile_pattern(pattern: str, field: str) -> re.Pattern[str]:
    """A compiled regular expression, or InvalidInput naming `field` and the regex error."""
    try:
        return re.compile(pattern)
    except re.error as error:
        raise InvalidInput(field, f"not a valid regular expression ({error}): {pattern!r}") from None


def _check_regex(record: EvalRecord) -> None:
    compile_pattern(record.answer, f"answer of {where(record)}")


def regex_match(output: str, record: EvalRecord, pattern: re.Pattern[str] | None = None) -> float:
    """1 when the whole stripped output matches the pattern (the job's, else the record's answer).

    fullmatch, not search: with search any output containing the answer ("4" in "14") would pass; a user who
    wants search semantics writes ".*4.*" and sees it in the pattern.
    """
    compiled = pattern if pattern is not None else compile_pattern(record.answer, f"answer of {where(record)}")
    return float(compiled.fullmatch(output.strip()) is not None)


def regex_metric(pattern: str | None = None) -> Metric:
    """The regex metric, with a job-level pattern that replaces every record's answer when given."""
    if pattern is None:
        return Metric(
            "regex",
            "the stripped output fullmatches the record's answer as a regex",
            regex_match,
            record_check=_check_regex,
        )
    compiled = compile_pattern(pattern, "pattern")
    return Metric(
        "regex",
        f"the stripped output fullmatches {pattern!r}",
        lambda output, record: regex_match(output, record, compiled),
    )


# sudoku --------------------------------------------------------------------------------------------------------


def _check_sudoku(record: EvalRecord) -> None:
    if record.kind != "infill":
        raise InvalidInput("metric", f'{where(record)}: sudoku scores infill records (a "masked" grid)')
    try:
        _sudoku.givens(record.masked or "")
    except InvalidInput as error:
        raise InvalidInput("masked", f"{where(record)}: {error.message}") from None


def sudoku(output: str, record: EvalRecord) -> float:
    """1 when the output's digits form a valid 9x9 grid consistent with the givens of the record's masked grid.

    The output may be the whole grid (81 digits) or just the filled-in blanks in reading order; white space and
    separators are ignored. The answer field is not used: any valid completion counts, unique or not.
    """
    _check_sudoku(record)
    cells = _sudoku.givens(record.masked or "")
    digits = _sudoku.grid_digits(output)
    blanks = [i for i, given in enumerate(cells) if given is None]
    if len(digits) == len(blanks) != 81:
        filled = list(cells)
        for i, digit in zip(blanks, digits, strict=True):
            filled[i] = digit
        digits = "".join(d or "" for d in filled)
    return float(_sudoku.solves(digits, record.masked or ""))


# toy_tv --------------------------------------------------------------------------------------------------------


def _check_toy(record: EvalRecord) -> None:
    if record.answer.strip() not in _toy.TARGETS:
        raise InvalidInput(
            "answer",
            f"{where(record)}: toy_tv needs the toy target's name as the answer "
            f"({', '.join(_toy.TARGETS)}), got {record.answer!r}",
        )


def toy_tv(outputs: Sequence[str], records: Sequence[EvalRecord]) -> float:
    """1 - TV between the empirical distribution of the outputs and the exact toy's target.

    Every record names the target in its answer ("extremes" or "two-or-three"), the same for all. An output that is
    not one of the 32 sequences (after stripping white space) is mass the target never has, so it counts fully
    toward the distance.
    """
    for record in records:
        _check_toy(record)
    targets = sorted({record.answer.strip() for record in records})
    if len(targets) != 1:
        raise InvalidInput("answer", f"toy_tv needs one target for the whole set, got {', '.join(targets)}")
    counts = Counter(output.strip() for output in outputs)
    empirical = np.array([counts[sequence] for sequence in _toy.SEQUENCES], dtype=np.float64) / len(outputs)
    tv_on_sequences = float(_toy.metric_arrays(targets[0], empirical)[0])
    return 1.0 - (tv_on_sequences + 0.5 * (1.0 - empirical.sum()))


# the paper's tasks (mdmtune.task_metrics, mdmtune.code_metric) ---------------------------------------------------


def _completion_only(name: str, check: RecordCheck) -> RecordCheck:
    """`check`, after refusing infill records: these metrics read a generated answer, not a filled-in text."""

    def checked(record: EvalRecord) -> None:
        if record.kind != "completion":
            raise InvalidInput("metric", f'{where(record)}: {name} scores completion records (a "prompt")')
        check(record)

    return checked


def _gsm8k(extraction: str) -> Metric:
    name = "gsm8k" if extraction == "flexible" else "gsm8k_strict"
    filter_name = {"flexible": "flexible-extract (the last number)", "strict": "strict-match (the first '#### n')"}
    return Metric(
        name,
        f"lm-eval gsm8k exact match, {filter_name[extraction]} extraction",
        lambda output, record: _tasks.gsm8k_score(output, record, extraction),
        record_check=_completion_only(name, _tasks.check_gsm8k),
    )


# registry ------------------------------------------------------------------------------------------------------

_METRICS: dict[str, Callable[[], Metric]] = {
    "exact_match": lambda: Metric(
        "exact_match", "output equals the answer, surrounding white space ignored", exact_match
    ),
    "numeric_match": lambda: Metric(
        "numeric_match",
        "final number (or the one after '####') equals the answer's",
        numeric_match,
        record_check=_check_numeric,
    ),
    "regex": regex_metric,
    "sudoku": lambda: Metric("sudoku", "valid 9x9 grid consistent with the givens", sudoku, record_check=_check_sudoku),
    "gsm8k": lambda: _gsm8k("flexible"),
    "gsm8k_strict": lambda: _gsm8k("strict"),
    "math": lambda: Metric(
        "math",
        "final answer (last \\boxed{}, else 'the answer is') mathematically equal to the reference (math-verify)",
        _tasks.math_score,
        record_check=_completion_only("math", _tasks.check_math),
    ),
    "bbh": lambda: Metric(
        "bbh",
        "lm-eval bbh exact match of the text after 'the answer is'",
        _tasks.bbh_score,
        record_check=_completion_only("bbh", _tasks.check_bbh),
    ),
    "pass_at_1": lambda: Metric(
        "pass_at_1",
        "prompt + completion + test run in the sandbox; passes when its last statement returns normally",
        _code.pass_at_1,
        record_check=_completion_only("pass_at_1", _code.check_code),
        many_score=_code.pass_at_1_many,
        many_reasons=_code.verdicts,
    ),
    "toy_tv": lambda: Metric(
        "toy_tv",
        "1 - total variation of the outputs' distribution to the toy target",
        set_score=toy_tv,
        record_check=_check_toy,
    ),
}

METRIC_NAMES: tuple[str, ...] = tuple(_METRICS)


def resolve_metric(name: str | None, eval_set: EvalSet) -> Metric:
    """The metric a job scores `eval_set` with: the one named, else the one the set declares; never a silent default.

    The metric is checked against every record here (before any model call is paid for); a metric that cannot score
    them is refused naming `metric`, with the record and the reason.
    """
    chosen = name if name is not None else eval_set.declared_metric
    if chosen is None:
        raise InvalidInput(
            "metric",
            "required: name the metric (allowed: " + ", ".join(METRIC_NAMES) + "), or declare it in the eval set "
            '(a "metric" field on every record)',
        )
    metric = get_metric(chosen)
    try:
        metric.check_records(eval_set.records)
    except InvalidInput as error:
        raise InvalidInput("metric", f"{chosen} cannot score this eval set: {error.field}: {error.message}") from None
    return metric


def get_metric(name: str, *, pattern: str | None = None) -> Metric:
    """The metric called `name`; `pattern` is the regex metric's job-level pattern (refused for other metrics)."""
    if name not in _METRICS:
        raise InvalidInput("metric", f"unknown metric {name!r}; allowed: {', '.join(METRIC_NAMES)}")
    if pattern is not None:
        if name != "regex":
            raise InvalidInput("pattern", f"a pattern is for the regex metric only, not {name!r}")
        return regex_metric(pattern)
    return _METRICS[name]()
