"""Scorers that compare an output's text with the record's answer: exact_match, numeric_match and regex.

Pure Python: never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import re
from decimal import Decimal

from mdmtune.data.evalsets import EvalRecord, where
from mdmtune.errors import InvalidInput
from mdmtune.metrics.base import Metric


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


def check_numeric(record: EvalRecord) -> None:
    if final_number(record.answer) is None:
        raise InvalidInput(
            "answer", f"{where(record)}: numeric_match needs a number in the answer, got {record.answer!r}"
        )


def numeric_match(output: str, record: EvalRecord) -> float:
    """1 when the output's final number equals the answer's numerically (so "42.0" matches "42")."""
    check_numeric(record)
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
