"""Numbers in text for people are rounded one way everywhere (mdmtune.data.display); JSON keeps every digit.

Scores and their intervals: 3 decimals; differences: 3 decimals with a sign; energies: 4 decimals; parameters: 4
significant digits. The commands are run for real (the shipped Sudoku model) and their tables read back.
"""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch

from mdmtune.cli.main import main
from mdmtune.data import display
from mdmtune.tuning.result import BaselineScore, BestSchedule, CountPlan, TuneResult

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "sudoku"


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as done, redirect_stdout(out), redirect_stderr(err):
        main(list(args))
    return done.value.code, out.getvalue(), err.getvalue()


def assert_rounded(text: str, value: float, decimals: int = 3) -> None:
    """`value` shows with `decimals` decimals, and never with more (its truncation followed by another digit)."""
    assert f"{value:.{decimals}f}" in text, (value, text)
    longer = f"{value:.{decimals + 1}f}"[:-1]
    if round(value, decimals) != value:
        assert not re.search(re.escape(longer) + r"\d", text), (value, text)


def test_the_roundings():
    assert display.score(7 / 30) == "0.233" and display.score(0.2833333) == "0.283" and display.score(1) == "1.000"
    assert display.diff(1 / 12) == "+0.083" and display.diff(-1 / 12) == "-0.083"
    assert display.interval([1 / 7, 5 / 7]) == "[0.143, 0.714]" and display.interval(None) == ""
    assert display.interval([-1 / 7, 5 / 7], signed=True) == "[-0.143, +0.714]"
    assert display.energy(9.869604401089358) == "9.8696" and display.energy(float("inf")) == "inf"
    assert (
        display.parameter(0.34751234) == "0.3475" and display.parameter(1.0) == "1" and display.parameter(None) == "-"
    )


def _quality_result() -> TuneResult:
    best = BestSchedule(a=0.347512345, b=0.77761234, score=7 / 30, ci=[0.11866, 0.41167], name="beta")
    linear = BaselineScore(a=0.5, b=0.5, score=5 / 30, diff=2 / 30, diff_ci=[-1 / 30, 5 / 30], ci=[0.0733, 0.3364])
    return TuneResult(
        objective="quality", steps=8, best=best, baselines={"linear": linear}, trials=[], nfe=100,
        wall_time_s=1.0, n_trials=10, plan=CountPlan(masked=45, counts=[3, 6, 7, 7, 7, 6, 6, 3]),
        metric="sudoku", confirm_records=30,
    )  # fmt: skip


def test_the_tune_table_and_print_result_round_alike(capsys):
    from mdmtune.cli.tune import _print

    result = _quality_result()
    _print(result, None)
    table = capsys.readouterr().out
    text = str(result)
    for shown in (table, text):
        for value in (7 / 30, 5 / 30, 0.11866, 0.41167, 0.0733, 0.3364):
            assert_rounded(shown, value)
        assert "+0.067" in shown and "[-0.033, +0.167]" in shown
        assert "0.3475" in shown and "0.3475123" not in shown
        assert "3 6 7 7 7 6 6 3" in shown
    assert str(result.best) == "a=0.3475 b=0.7776, score 0.233 (95% CI [0.119, 0.412])"
    assert json.loads(json.dumps(result.to_json()))["best"]["score"] == 7 / 30  # JSON: every digit


def test_score_prints_three_decimals_and_its_json_every_digit(tmp_path):
    eval_set = tmp_path / "e.jsonl"
    eval_set.write_text("".join(json.dumps({"prompt": "q", "answer": str(n)}) + "\n" for n in range(3)))
    outputs = tmp_path / "o.jsonl"
    outputs.write_text("".join(json.dumps({"id": n + 1, "output": "0"}) + "\n" for n in range(3)))
    args = ["score", "--eval-set", str(eval_set), "--outputs", str(outputs), "--metric", "exact_match"]
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    assert json.loads(out)["mean_score"] == 1 / 3
    code, out, err = run_cli(*args)
    assert code == 0, err
    assert_rounded(out, 1 / 3)
    assert "1.000" in out and "0.000" in out


@pytest.fixture(scope="module")
def sudoku_slice(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("display") / "eval.jsonl"
    path.write_text("\n".join((EXAMPLES / "eval.jsonl").read_text().splitlines()[:14]) + "\n")
    return path


def test_compare_and_sample_tables_round_what_their_json_holds(sudoku_slice):
    base = ["--checkpoint", str(EXAMPLES / "checkpoint"), "--eval-set", str(sudoku_slice), "--metric", "sudoku"]
    args = ["compare", *base, "--steps", "4", "--schedules", "cos2,0.34751234:0.7776", "--resamples", "200"]
    code, out, err = run_cli(*args, "--json")
    assert code == 0, err
    document = json.loads(out)
    code, table, err = run_cli(*args)
    assert code == 0, err
    for row in document["schedules"]:
        assert_rounded(table, row["score"])
        for bound in row["ci"]:
            assert_rounded(table, bound)
    assert "│ 0.3475 │ 0.7776 │" in table  # a and b at 4 significant digits (its name keeps what the user wrote)
    sample = ["sample", *base, "--steps", "4", "--a", "0.34751234", "--b", "0.7776"]
    code, out, err = run_cli(*sample, "--json")
    assert code == 0, err
    mean = json.loads(out)["mean_score"]
    code, table, err = run_cli(*sample)
    assert code == 0, err
    assert_rounded(table, mean)
