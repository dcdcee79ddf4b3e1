"""`mdmtune frontier` on the shipped Sudoku checkpoint (a 30-record slice of its eval set, small searches): the
documented JSON, the figure, and every point re-scored to the record by `mdmtune sample`; the winner and front rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mdmtune.cli.main import main
from mdmtune.tuning.frontier import FrontierPoint, _winner, pareto_front

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "examples" / "sudoku" / "checkpoint"
BUDGETS = (2, 4)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def frontier(tmp_path_factory):
    """The command run once: its JSON document, its output folder and the slice it ran on."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("frontier")
    lines = (ROOT / "examples" / "sudoku" / "eval.jsonl").read_text().splitlines()[:30]
    (folder / "eval.jsonl").write_text("\n".join(lines) + "\n")
    args = ["frontier", "--checkpoint", str(CHECKPOINT), "--eval-set", str(folder / "eval.jsonl")]
    args += ["--metric", "sudoku", "--budgets", ",".join(map(str, BUDGETS)), "--trials", "4"]
    with pytest.raises(SystemExit) as done:
        main([*args, "--out", str(folder / "out"), "--json"])
    assert done.value.code == 0
    return folder


@pytest.fixture(scope="module")
def document(frontier):
    return json.loads((frontier / "out" / "frontier.json").read_text())


def test_json_has_a_point_per_policy_at_every_budget(document):
    assert [b["budget"] for b in document["frontier"]] == list(BUDGETS)
    for budget in document["frontier"]:
        names = [p["name"] for p in budget["points"]]
        assert names[:3] == ["tuned", "linear", "cos2"]
        assert set(names[3:]) <= {"threshold", "entropy", "hybrid"} and names[-1] == "hybrid"
        assert budget["winner"] in budget["points"]
        for point in budget["points"]:
            assert {"decoder", "a", "b", "steps", "threshold", "entropy_bound", "nfe_per_record", "score", "ci"} <= set(
                point
            )
            assert point["ci"][0] <= point["score"] <= point["ci"][1]
            assert point["diff_vs_linear_ci"][0] <= point["diff_vs_linear"] + 1e-12
            if point["decoder"] in ("schedule", "hybrid"):
                assert point["steps"] == budget["budget"] and point["nfe_per_record"] <= budget["budget"]
            else:
                assert point["search_nfe_per_record"] <= budget["budget"] + 1e-9
        linear = next(p for p in budget["points"] if p["name"] == "linear")
        assert (linear["a"], linear["b"]) == (0.5, 0.5)
        assert linear["diff_vs_linear"] == 0 and linear["diff_vs_linear_ci"] == [0.0, 0.0]
        tuned, hybrid = budget["points"][0], budget["points"][-1]
        assert (hybrid["a"], hybrid["b"]) == (tuned["a"], tuned["b"])  # the floor is the budget's tuned plan
        assert 0 <= hybrid["threshold"] <= 1
        eligible = [p for p in budget["points"] if p["within_budget"]]
        assert budget["winner"]["score"] == max(p["score"] for p in eligible)
    assert document["confirm_records"] == len(document["confirm_ids"]) == 9
    assert document["nfe"] == sum(document["nfe_by_part"].values())


def test_the_figure_is_written(document, frontier):
    figure = Path(document["figures"]["frontier"])
    assert figure.parent == frontier / "out"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _sample(capsys, frontier, *extra: str) -> dict:
    args = ["sample", "--checkpoint", str(CHECKPOINT), "--eval-set", str(frontier / "eval.jsonl")]
    code, out, err = run_cli(capsys, *args, "--metric", "sudoku", *extra, "--json")
    assert code == 0, err
    return json.loads(out)


def test_sample_rescores_every_point_to_the_record(capsys, frontier, document):
    """Each point's confirm score and calls per record, from `mdmtune sample` on the whole set, read on the confirm
    ids: the same records and seeds, so the same numbers."""
    confirm = set(document["confirm_ids"])
    for budget in document["frontier"]:
        for point in budget["points"]:
            if point["decoder"] == "schedule":
                extra = ["--steps", str(point["steps"]), "--a", repr(point["a"]), "--b", repr(point["b"])]
            elif point["decoder"] == "threshold":
                extra = ["--decoder", "threshold", "--threshold", repr(point["threshold"])]
            elif point["decoder"] == "hybrid":
                extra = ["--decoder", "hybrid", "--threshold", repr(point["threshold"]), "--steps", str(point["steps"])]
                extra += ["--a", repr(point["a"]), "--b", repr(point["b"])]
            else:
                extra = ["--decoder", "entropy", "--entropy-bound", repr(point["entropy_bound"])]
            report = _sample(capsys, frontier, *extra)
            rows = [r for r in report["records"] if r["id"] in confirm]
            assert len(rows) == len(confirm)
            assert np.mean([r["score"] for r in rows]) == pytest.approx(point["score"], abs=1e-12)
            assert np.mean([r["nfe"] for r in rows]) == pytest.approx(point["nfe_per_record"], abs=1e-12)


def test_bad_budgets_exit_2_naming_the_field(capsys, frontier):
    for budgets in ("4,4", "x", "0,4", ",".join(str(i) for i in range(1, 11))):
        args = ["frontier", "--checkpoint", str(CHECKPOINT), "--eval-set", str(frontier / "eval.jsonl")]
        code, out, err = run_cli(capsys, *args, "--metric", "sudoku", "--budgets", budgets)
        assert code == 2 and out == ""
        assert "budgets" in err


def _point(name: str, score: float, calls: float, budget: int = 4) -> FrontierPoint:
    decoder = name if name in ("threshold", "entropy") else "schedule"
    return FrontierPoint(decoder, name, calls, score, [0, 1], 0.0, [0, 0], calls <= budget)


def test_the_winner_keeps_to_the_budget_and_ties_go_to_fewer_calls_then_the_simpler_policy():
    points = [_point("tuned", 0.5, 4), _point("linear", 0.5, 4), _point("threshold", 0.9, 4.2)]
    assert _winner(points).name == "linear"  # threshold is better but over budget on the confirm split
    points.append(_point("entropy", 0.6, 3.5))
    assert _winner(points).name == "entropy"
    points.append(_point("threshold", 0.6, 3.0))
    assert _winner(points).name == "threshold"  # the same score for fewer calls


def test_the_front_is_the_points_no_other_point_beats_on_both_axes():
    points = [_point("linear", 0.4, 4), _point("tuned", 0.6, 4), _point("entropy", 0.6, 3), _point("cos2", 0.7, 8)]
    assert [p.name for p in pareto_front(points)] == ["entropy", "cos2"]


def test_sample_with_a_decoder_keeps_nfe_per_record_and_refuses_schedule_options(capsys, frontier):
    report = _sample(capsys, frontier, "--decoder", "entropy", "--entropy-bound", "0.5", "--max-steps", "3")
    assert report["decoder"] == "entropy" and report["schedule"] is None
    assert report["nfe_per_record"] == np.mean([r["nfe"] for r in report["records"]]) <= 3
    args = ["sample", "--checkpoint", str(CHECKPOINT), "--eval-set", str(frontier / "eval.jsonl"), "--metric", "sudoku"]
    for extra, field in (
        (["--decoder", "threshold", "--threshold", "0.9", "--steps", "8"], "steps"),
        (["--decoder", "threshold"], "threshold"),
        (["--decoder", "entropy", "--entropy-bound", "0.1", "--name", "linear"], "name"),
        (["--steps", "8", "--name", "linear", "--threshold", "0.9"], "threshold"),
        (["--decoder", "hybrid", "--threshold", "0.9", "--name", "linear"], "steps"),
        (["--decoder", "hybrid", "--steps", "8", "--name", "linear"], "threshold"),
        (["--decoder", "hybrid", "--threshold", "1.5", "--steps", "8", "--name", "linear"], "threshold"),
        (
            ["--decoder", "hybrid", "--threshold", "0.9", "--steps", "8", "--name", "linear", "--max-steps", "4"],
            "max_steps",
        ),
    ):
        code, out, err = run_cli(capsys, *args, *extra)
        assert code == 2 and out == "" and f"{field}:" in err, (extra, err)


@pytest.mark.parametrize("remasking", ["low_confidence", "random"])
def test_tune_scores_a_rival_decoder_beside_the_baselines(capsys, frontier, remasking):
    """The rival commits by its own rule whatever remasking the schedules are sampled with."""
    args = ["tune", "--checkpoint", str(CHECKPOINT), "--eval-set", str(frontier / "eval.jsonl"), "--metric", "sudoku"]
    args += ["--steps", "4", "--trials", "3", "--decoder", "entropy", "--entropy-bound", "0.5", "--no-figures"]
    args += ["--remasking", remasking]
    code, out, err = run_cli(capsys, *args, "--out", str(frontier / f"tune-{remasking}"), "--json")
    assert code == 0, err
    document = json.loads(out)
    rival = document["baselines"]["entropy"]
    report = _sample(capsys, frontier, "--decoder", "entropy", "--entropy-bound", "0.5")
    confirm = {r["id"] for r in report["records"]} - set(_search_ids(frontier, document))
    rows = [r for r in report["records"] if r["id"] in confirm]
    assert rival["score"] == pytest.approx(np.mean([r["score"] for r in rows]))
    assert rival["nfe_per_record"] == pytest.approx(np.mean([r["nfe"] for r in rows]))


def test_tune_scores_the_hybrid_on_the_tuned_plan_beside_the_baselines(capsys, frontier):
    """The hybrid rival's floor is the tuned schedule at the job's N: `mdmtune sample --decoder hybrid` with the
    tuned a, b gives its confirm score and calls; it never needs more calls than the plan's steps."""
    args = ["tune", "--checkpoint", str(CHECKPOINT), "--eval-set", str(frontier / "eval.jsonl"), "--metric", "sudoku"]
    args += ["--steps", "4", "--trials", "3", "--decoder", "hybrid", "--threshold", "0.8", "--no-figures"]
    code, out, err = run_cli(capsys, *args, "--out", str(frontier / "tune-hybrid"), "--json")
    assert code == 0, err
    document = json.loads(out)
    rival = document["baselines"]["hybrid"]
    best = document["best"]
    extra = ["--steps", "4", "--a", repr(best["a"]), "--b", repr(best["b"])]
    report = _sample(capsys, frontier, "--decoder", "hybrid", "--threshold", "0.8", *extra)
    confirm = {r["id"] for r in report["records"]} - set(_search_ids(frontier, document))
    rows = [r for r in report["records"] if r["id"] in confirm]
    assert rival["score"] == pytest.approx(np.mean([r["score"] for r in rows]))
    assert rival["nfe_per_record"] == pytest.approx(np.mean([r["nfe"] for r in rows]))
    assert rival["nfe_per_record"] <= 4


def _search_ids(frontier, document) -> list:
    """The records the tune job's search saw: the eval set minus its confirm split (split_records, seed 0)."""
    from mdmtune.tuning.quality_objective import split_records

    lines = (frontier / "eval.jsonl").read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    search, _ = split_records(len(ids), 0.3, 0)
    assert document["search_records"] == len(search)
    return [ids[i] for i in search]


def test_the_table_rounds_scores_and_intervals_to_three_decimals(document, capsys, tmp_path):
    from mdmtune.cli.frontier import _print
    from mdmtune.data.jsonsafe import from_jsonable
    from mdmtune.tuning.frontier import FrontierResult

    _print(from_jsonable(FrontierResult, document), tmp_path)
    table = capsys.readouterr().out
    for budget in document["frontier"]:
        for point in budget["points"]:
            for value in (point["score"], *point["ci"]):
                assert f"{value:.3f}" in table
                if round(value, 3) != value:  # never with more decimals
                    assert f"{value:.4f}"[:-1] + str(int(f"{value:.4f}"[-1])) not in table
