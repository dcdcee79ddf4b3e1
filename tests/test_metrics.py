"""Metrics: each scorer on hand-checked cases, the registry, and the record checks that run before sampling."""

from __future__ import annotations

import numpy as np
import pytest

from mdmtune.data.evalsets import EvalRecord
from mdmtune.errors import InvalidInput
from mdmtune.metrics import METRIC_NAMES, get_metric
from mdmtune.metrics.text import final_number
from mdmtune.testbeds.sudoku import random_grid


def completion(answer: str, record_id: int | str = 1) -> EvalRecord:
    return EvalRecord(id=record_id, kind="completion", prompt="q", masked=None, answer=answer, line=3)


def infill(masked: str, answer: str = "") -> EvalRecord:
    return EvalRecord(id="s", kind="infill", prompt=None, masked=masked, answer=answer, line=4)


def test_exact_match_ignores_surrounding_white_space_only():
    metric = get_metric("exact_match")
    assert metric.score("  936\n", completion("936")) == 1.0
    assert metric.score("9 36", completion("936")) == 0.0
    assert metric.score("9360", completion("936")) == 0.0
    assert metric.score("", completion("")) == 1.0


@pytest.mark.parametrize(
    ("output", "answer", "expected"),
    [
        ("The answer is 42.", "42", 1.0),
        ("first 3 then 42", "42", 1.0),
        ("42 then 3", "42", 0.0),
        ("42.0", "42", 1.0),
        ("1,234 apples", "1234", 1.0),
        ("#### 18\nso maybe 5", "18", 1.0),
        ("#### 18 and 5", "#### 18", 1.0),
        ("-7", "7", 0.0),
        ("no number here", "5", 0.0),
        ("0.5", ".5", 1.0),
    ],
)
def test_numeric_match_takes_the_last_number_or_the_one_after_hashes(output, answer, expected):
    assert get_metric("numeric_match").score(output, completion(answer)) == expected


def test_final_number_parses_hand_checked_strings():
    from decimal import Decimal

    assert final_number("x 1,000,000 y 2.50") == Decimal("2.50")
    assert final_number("#### -3") == Decimal(-3)
    assert final_number("####") is None


def test_numeric_match_refuses_an_answer_without_a_number_naming_the_record():
    metric = get_metric("numeric_match")
    with pytest.raises(InvalidInput, match=r"record 1 \(line 3\)") as caught:
        metric.check_records([completion("seven")])
    assert caught.value.field == "answer"


def test_regex_uses_fullmatch_of_the_answer_on_the_stripped_output():
    metric = get_metric("regex")
    assert metric.score(" 14 ", completion(r"1\d")) == 1.0
    assert metric.score("114", completion(r"1\d")) == 0.0
    assert metric.score("x4y", completion(r".*4.*")) == 1.0


def test_regex_job_pattern_replaces_the_answer():
    metric = get_metric("regex", pattern=r"[a-c]+")
    assert metric.score("abc", completion("zzz")) == 1.0
    assert metric.score("abd", completion("abd")) == 0.0


def test_bad_regex_is_refused_naming_the_field():
    with pytest.raises(InvalidInput) as caught:
        get_metric("regex", pattern="(")
    assert caught.value.field == "pattern"
    with pytest.raises(InvalidInput, match="line 3"):
        get_metric("regex").check_records([completion("[")])


def test_a_pattern_for_another_metric_is_refused():
    with pytest.raises(InvalidInput) as caught:
        get_metric("exact_match", pattern="x")
    assert caught.value.field == "pattern"


def test_unknown_metric_lists_the_allowed_names():
    with pytest.raises(InvalidInput) as caught:
        get_metric("bleu")
    assert caught.value.field == "metric"
    for name in METRIC_NAMES:
        assert name in caught.value.message


def test_aggregate_is_the_mean_of_record_scores():
    metric = get_metric("exact_match")
    records = [completion("1", 1), completion("2", 2), completion("3", 3), completion("4", 4)]
    assert metric.per_record
    assert metric.aggregate(["1", "x", "3", "y"], records) == 0.5
    with pytest.raises(InvalidInput):
        metric.aggregate(["1"], records)


@pytest.fixture(scope="module")
def solution() -> str:
    return random_grid(np.random.default_rng(11))


def with_blanks(grid: str, cells: list[int]) -> str:
    return "".join("_" if i in cells else ch for i, ch in enumerate(grid))


def test_sudoku_accepts_the_generators_solution_with_or_without_separators(solution):
    metric = get_metric("sudoku")
    record = infill(with_blanks(solution, [0, 5, 40, 80]))
    assert metric.score(solution, record) == 1.0
    rows = "\n".join(" | ".join(solution[9 * r : 9 * r + 9]) for r in range(9))
    assert metric.score(rows, record) == 1.0


def test_sudoku_accepts_only_the_filled_blanks_in_reading_order(solution):
    cells = [0, 5, 40, 80]
    record = infill(with_blanks(solution, cells))
    assert get_metric("sudoku").score(" ".join(solution[i] for i in cells), record) == 1.0


def test_sudoku_one_changed_cell_makes_the_grid_invalid(solution):
    record = infill(with_blanks(solution, list(range(81))))
    for cell in (0, 37, 80):
        changed = solution[:cell] + str(int(solution[cell]) % 9 + 1) + solution[cell + 1 :]
        assert get_metric("sudoku").score(changed, record) == 0.0


def test_sudoku_detects_inconsistency_with_the_givens(solution):
    # relabelling two digits keeps the grid valid but contradicts every given of those digits
    swapped = solution.translate(str.maketrans("12", "21"))
    assert get_metric("sudoku").score(swapped, infill(with_blanks(solution, list(range(81))))) == 1.0
    assert get_metric("sudoku").score(swapped, infill(with_blanks(solution, list(range(40))))) == 0.0


def test_sudoku_rejects_short_outputs_zeros_and_masks(solution):
    record = infill(with_blanks(solution, [3]))
    metric = get_metric("sudoku")
    assert metric.score(solution[:80], record) == 0.0
    assert metric.score(solution[:3] + "0" + solution[4:], record) == 0.0
    assert metric.score(solution[:3] + "_" + solution[4:], record) == 0.0


def test_sudoku_reads_bert_style_mask_tokens_in_the_givens(solution):
    masked = "".join("[MASK]" if i % 2 else ch for i, ch in enumerate(solution))
    assert get_metric("sudoku").score(solution, infill(masked)) == 1.0


def test_sudoku_refuses_a_grid_without_81_cells_and_completion_records():
    metric = get_metric("sudoku")
    with pytest.raises(InvalidInput, match="81 cells") as caught:
        metric.check_records([infill("12_")])
    assert caught.value.field == "masked"
    with pytest.raises(InvalidInput, match="infill"):
        metric.check_records([completion("1")])


def toy_records(target: str, n: int) -> list[EvalRecord]:
    return [EvalRecord(id=i, kind="infill", prompt=None, masked="_____", answer=target) for i in range(n)]


def test_toy_tv_is_one_when_outputs_match_the_target_exactly():
    metric = get_metric("toy_tv")
    assert not metric.per_record
    assert metric.aggregate(["aaaaa", "bbbbb"], toy_records("extremes", 2)) == pytest.approx(1.0)


def test_toy_tv_hand_checked_distances():
    metric = get_metric("toy_tv")
    # all mass on aaaaa vs {aaaaa: 1/2, bbbbb: 1/2}: TV = 1/2
    assert metric.aggregate(["aaaaa"] * 4, toy_records("extremes", 4)) == pytest.approx(0.5)
    # all mass on one of the 20 two-or-three sequences: TV = (1 - 1/20 + 19/20) / 2 = 0.95
    assert metric.aggregate([" aabbb "] * 3, toy_records("two-or-three", 3)) == pytest.approx(0.05)
    # half the outputs are not sequences at all, half are ababa (in support): TV = (19/20 + 1/2 - 1/20 + 1/2) / 2
    outputs = ["ababa", "abab", "ababa", "zzzzz"]
    assert metric.aggregate(outputs, toy_records("two-or-three", 4)) == pytest.approx(1 - (0.5 - 0.05 + 0.95 + 0.5) / 2)


def test_toy_tv_has_no_per_record_score_and_refuses_mixed_or_unknown_targets():
    metric = get_metric("toy_tv")
    with pytest.raises(InvalidInput) as caught:
        metric.score("aaaaa", toy_records("extremes", 1)[0])
    assert caught.value.field == "metric"
    with pytest.raises(InvalidInput, match="one target"):
        metric.aggregate(["aaaaa", "aabbb"], toy_records("extremes", 1) + toy_records("two-or-three", 1))
    with pytest.raises(InvalidInput, match="toy target") as caught:
        metric.check_records(toy_records("uniform", 1))
    assert caught.value.field == "answer"


def test_the_registry_is_the_one_way_in_to_the_scorers():
    """Outside mdmtune/metrics the package asks the registry (mdmtune.metrics) for a metric, never a scorer module;
    inside, the scorer modules never import the registry back (imports stay one-way)."""
    import ast
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "mdmtune"
    submodules = {f"mdmtune.metrics.{p.stem}" for p in (package / "metrics").glob("*.py") if p.stem != "__init__"}
    assert {"mdmtune.metrics.base", "mdmtune.metrics.tasks", "mdmtune.metrics.code"} <= submodules
    for path in package.rglob("*.py"):
        inside = path.parent == package / "metrics"
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("mdmtune.metrics"):
                continue
            named = {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
            if inside and path.name != "__init__.py":
                assert node.module != "mdmtune.metrics", f"{path.name} imports the registry back"
            elif not inside:
                assert not named & submodules, f"{path.relative_to(package)} imports a scorer module directly"
