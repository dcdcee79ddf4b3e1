"""The metric registry: the one way in to every scorer of decoded outputs, by name.

`get_metric(name)` builds a `Metric` (mdmtune.metrics.base); `resolve_metric(name, eval_set)` also takes the metric an
eval set declares and checks every record against it before any model call is paid for. The scorers live one family a
module: text (exact_match, numeric_match, regex), tasks (gsm8k, math, bbh), code (pass_at_1, run in mdmtune.sandbox),
sudoku and toy_tv. Pure Python: never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable

from mdmtune.data.evalsets import EvalRecord, EvalSet, where
from mdmtune.errors import InvalidInput
from mdmtune.metrics import code as _code
from mdmtune.metrics import sudoku as _sudoku
from mdmtune.metrics import tasks as _tasks
from mdmtune.metrics import toy_tv as _toy_tv
from mdmtune.metrics.base import Metric, RecordCheck, score_outputs
from mdmtune.metrics.text import (
    check_numeric,
    compile_pattern,
    exact_match,
    final_number,
    numeric_match,
    regex_match,
    regex_metric,
)

__all__ = ["METRIC_NAMES", "Metric", "get_metric", "resolve_metric", "score_outputs"]
__all__ += ["compile_pattern", "exact_match", "final_number", "numeric_match", "regex_match", "regex_metric"]
"""The text scorers also answer here, where 0.1 kept them (their home is mdmtune.metrics.text)."""


# the paper's tasks (mdmtune.metrics.tasks, mdmtune.metrics.code) -------------------------------------------------


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
        record_check=check_numeric,
    ),
    "regex": regex_metric,
    "sudoku": lambda: Metric(
        "sudoku", "valid 9x9 grid consistent with the givens", _sudoku.sudoku, record_check=_sudoku.check_sudoku
    ),
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
        set_score=_toy_tv.toy_tv,
        record_check=_toy_tv.check_toy,
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
