"""gsm8k, math and bbh read answers the way lm-eval (and math-verify) do; pass_at_1 builds the harness's program."""

from __future__ import annotations

import pytest

from mdmtune.data.evalsets import EvalRecord
from mdmtune.errors import InvalidInput
from mdmtune.metrics import METRIC_NAMES, get_metric
from mdmtune.metrics.code import build_program
from mdmtune.metrics.tasks import INVALID, bbh_extract, gsm8k_extract, last_boxed, math_final_answer

GSM8K_SOLUTION = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nIn total 48+24 = <<48+24=72>>72 clips.\n#### 72"


def record(answer: str, kind: str = "completion", **extra) -> EvalRecord:
    return EvalRecord(1, kind, "p" if kind == "completion" else None, "_" if kind == "infill" else None, answer, extra)


def test_the_paper_task_metrics_are_registered():
    assert {"gsm8k", "gsm8k_strict", "math", "bbh", "pass_at_1"} <= set(METRIC_NAMES)


@pytest.mark.parametrize(
    ("output", "flexible", "strict"),
    [
        ("She sold 24 in May, so 48 + 24 = 72 clips.\n#### 72", 1.0, 1.0),
        ("The answer is 72.", 1.0, 0.0),  # no "#### ": strict finds nothing
        ("#### 72\n\nQuestion: Tom has 5 apples", 1.0, 1.0),  # the next question is cut away
        ("#### $72.00", 1.0, 0.0),  # strict's regex admits no "$"; flexible reads "$72.00", normalized to "72"
        ("#### 1,072", 0.0, 0.0),
        ("72 is wrong, it is 71", 0.0, 0.0),
        ("no number at all", 0.0, 0.0),
    ],
)
def test_gsm8k_strict_and_flexible_extraction(output, flexible, strict):
    assert get_metric("gsm8k").score(output, record(GSM8K_SOLUTION)) == flexible
    assert get_metric("gsm8k_strict").score(output, record(GSM8K_SOLUTION)) == strict


@pytest.mark.parametrize(
    ("output", "answer"),
    [
        ("so the total is $1,234.", "1234"),
        ("#### 1,234", "#### 1234"),
        ("It costs 18.00 dollars in all: 18.00", "18"),
        ("-5 degrees", "#### -5"),
        ("The answer is 0.50", "0.5"),
    ],
)
def test_gsm8k_normalizes_separators_dollars_and_trailing_zeros(output, answer):
    assert get_metric("gsm8k").score(output, record(answer)) == 1.0


def test_gsm8k_extraction_follows_lm_eval_filters():
    assert gsm8k_extract("#### 3\n#### 4", "strict") == "3"  # take_first
    assert gsm8k_extract("1, 2 and then 42", "flexible") == "42"  # the last match
    assert gsm8k_extract("nothing", "strict") == gsm8k_extract("nothing", "flexible") == INVALID


def test_gsm8k_refuses_a_reference_without_a_number():
    with pytest.raises(InvalidInput) as caught:
        get_metric("gsm8k").check_records([record("seventy-two")])
    assert caught.value.field == "answer"


@pytest.mark.parametrize(
    ("output", "reference"),
    [
        ("So $x = \\boxed{\\frac{1}{2}}$.", "0.5"),
        ("The answer is $\\dfrac12$.", "\\frac{1}{2}"),
        ("\\boxed{\\frac{2}{4}}", "\\frac{1}{2}"),
        ("\\boxed{(1,2]}", "(1, 2]"),
        ("\\boxed{\\{2, 1\\}}", "\\{1,2\\}"),
        ("\\boxed{5 \\text{ cm}}", "5"),
        ("\\boxed{x=3}", "3"),
        ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}"),
        ("first \\boxed{1}, finally \\boxed{10^{2}}", "100"),
        ("\\boxed{3}", "Adding, we get $1+2=\\boxed{3}$."),  # a whole solution as the reference
    ],
)
def test_math_accepts_equal_answers_in_different_forms(output, reference):
    assert get_metric("math").score(output, record(reference)) == 1.0


@pytest.mark.parametrize(
    ("output", "reference"),
    [
        ("\\boxed{\\frac{1}{3}}", "0.5"),
        ("\\boxed{(1,2)}", "(1, 2]"),
        ("\\boxed{\\{1, 3\\}}", "\\{1,2\\}"),
        ("I do not know", "3"),
        ("\\boxed{3} was a guess, the answer is 4", "4"),  # the boxed answer wins, as in lm-eval
    ],
)
def test_math_refuses_different_answers(output, reference):
    assert get_metric("math").score(output, record(reference)) == 0.0


def test_math_answer_extraction():
    assert last_boxed("a \\boxed{\\frac{1}{2}} b \\boxed{x^{2}}") == "x^{2}"
    assert math_final_answer("Thus the answer is $42$.") == "42"
    assert math_final_answer("no answer stated") is None


@pytest.mark.parametrize(
    ("output", "target", "score"),
    [
        ("Let's see. So the answer is (A).", "(A)", 1.0),
        ("So the answer is (A).\n\nQ: next question, so the answer is (B).", "(A)", 1.0),
        ("So the answer is True.", "False", 0.0),
        ("So the answer is valid", "valid", 0.0),  # lm-eval drops the last character of the line (its period)
        ("So the Answer is (A).", "(A)", 0.0),  # lm-eval's regex is case-sensitive
        ("I think (A)", "(A)", 0.0),
    ],
)
def test_bbh_reads_the_answer_after_so_the_answer_is(output, target, score):
    assert get_metric("bbh").score(output, record(target)) == score


def test_bbh_extraction_says_invalid_when_there_is_no_answer():
    assert bbh_extract("no conclusion") == INVALID


@pytest.mark.parametrize("name", ["gsm8k", "math", "bbh", "pass_at_1"])
def test_answer_metrics_refuse_infill_records_naming_metric(name):
    with pytest.raises(InvalidInput) as caught:
        get_metric(name).check_records([record("1", kind="infill", test="assert True")])
    assert caught.value.field == "metric"


def test_humaneval_program_is_prompt_completion_test_and_check():
    rec = EvalRecord(
        "HumanEval/0",
        "completion",
        "def add(a, b):\n",
        None,
        "",
        {"test": "def check(candidate):\n    assert candidate(1, 2) == 3\n", "entry_point": "add"},
    )
    program = build_program("    return a + b\n\nprint('junk after the function')\n", rec)
    assert program.startswith("def add(a, b):\n    return a + b\n")
    assert "junk" not in program  # cut at "\nprint", as lm-eval's humaneval stop sequences do
    assert program.rstrip().endswith("check(add)")


def test_mbpp_program_is_completion_then_asserts_without_the_prose_prompt():
    rec = EvalRecord(2, "completion", "You are an expert Python programmer...", None, "", {"test": "assert f() == 1"})
    program = build_program("def f():\n    return 1\n[DONE]\nmore text", rec)
    assert program == "def f():\n    return 1\n\n\nassert f() == 1\n"


@pytest.mark.parametrize(
    ("extra", "field"),
    [({}, "test"), ({"test": "  "}, "test"), ({"test": "assert 1", "entry_point": "not a name"}, "entry_point")],
)
def test_code_records_need_a_test_and_a_valid_entry_point(extra, field):
    with pytest.raises(InvalidInput) as caught:
        get_metric("pass_at_1").check_records([record("", **extra)])
    assert caught.value.field == field
