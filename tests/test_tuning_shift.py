"""Tune results say where the tuned schedule's win does not hold: per-group breakdowns of the confirm split, a
second eval set re-scored when the search ends, and plain-words warnings.

The model is the exact toy's posterior for the "extremes" target at 3 steps, where the support mass of a schedule
is known exactly (cos2's plan reaches 1, linear's 0.5). Records of group "x" score 1 when the output lies in the
support, records of group "y" when it does not: the schedule that maximizes the mixed set (3 x for 1 y) is the one
that loses every "y" record, so the tuner's best must be reported as losing to linear there.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from mdmtune.cli.main import main
from mdmtune.cli.output import to_jsonable
from mdmtune.core import schedules
from mdmtune.core.toy import run_toy
from mdmtune.data.evalsets import parse_eval_set
from mdmtune.errors import InvalidInput
from mdmtune.sampling import SamplerSettings
from mdmtune.tuning import TuneSpec, tune
from mdmtune.tuning.evaluation import encode_records, evaluate
from mdmtune.tuning.groups import GroupBreakdown
from mdmtune.tuning.quality_objective import QualityObjective
from mdmtune.tuning.result import BaselineScore, BestSchedule, TuneResult, Validation
from mdmtune.tuning.shift import shift_warnings
from mdmtune.tuning.toy_denoiser import SUPPORT_PATTERNS, ToyPosterior

IN_SUPPORT = SUPPORT_PATTERNS["extremes"]
OUTSIDE = "(?!aaaaa$|bbbbb$)[ab]{5}"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "sudoku"


def mixed_set(n: int, y_every: int = 4):
    """Every `y_every`-th record is group "y" (scores outside the support), the others group "x"."""
    lines = []
    for i in range(n):
        y = i % y_every == 0
        answer = OUTSIDE if y else IN_SUPPORT
        lines.append(json.dumps({"id": i, "masked": "_____", "answer": answer, "group": "y" if y else "x"}))
    return parse_eval_set(("\n".join(lines) + "\n").encode())


def spec(**changes) -> TuneSpec:
    base = dict(
        steps=3, metric="regex", sampler="count", remasking="random", temperature=1.0, n_trials=12,
        trials_per_batch=6, min_rung_records=8, confirm_fraction=0.5, bootstrap_resamples=2000, seed=0,
    )  # fmt: skip
    return TuneSpec(**{**base, **changes})


@pytest.fixture(scope="module")
def tuned():
    job = spec()
    mixed, second = mixed_set(160), mixed_set(60, y_every=1)
    result = tune(job, checkpoint=ToyPosterior("extremes"), eval_set=mixed, validate_eval_set=second)
    return job, mixed, second, result


def test_the_toy_makes_the_mixed_sets_best_lose_every_y_record():
    """The premise, exactly: the best plan's support mass is 1 where linear's is 0.5."""
    best = max(run_toy("extremes", a, b, 3, "count").support_mass for a, b in [(1, 1), (2, 2), (0.7, 0.7)])
    assert best == 1.0 and run_toy("extremes", 0.5, 0.5, 3, "count").support_mass == 0.5


def test_confirm_split_groups_match_the_confirm_records_scores(tuned):
    job, mixed, _, result = tuned
    objective = QualityObjective.build(job, checkpoint=ToyPosterior("extremes"), eval_set=mixed)
    confirm = objective.confirm_indices
    best = schedules.beta(result.best.a, result.best.b)
    scores, _ = objective.confirm_scores([best, schedules.named("linear")])
    labels = np.array([mixed.records[i].extra["group"] for i in confirm])
    groups = {g.label: g for g in result.groups.strata["group"]}
    assert set(groups) == {"x", "y"} and set(result.groups.strata) == {"group"}  # one masked count: no stratum
    for label, group in groups.items():
        members = labels == label
        assert group.records == members.sum()
        assert group.scores["best"] == pytest.approx(scores[0, members].mean())
        assert group.scores["linear"] == pytest.approx(scores[1, members].mean())
        diff = next(d for d in group.diffs if d.reference == "linear")
        assert diff.diff == pytest.approx(scores[0, members].mean() - scores[1, members].mean())
    assert groups["y"].scores["best"] == 0.0 and groups["x"].scores["best"] == 1.0


def test_the_best_wins_overall_loses_in_group_y_and_the_result_says_so(tuned):
    _, _, _, result = tuned
    assert result.baselines["linear"].diff > 0 and result.baselines["linear"].diff_ci[0] > 0
    losses = [(loss.stratum, loss.group, loss.reference) for loss in result.groups.losses]
    assert ("group", "y", "linear") in losses
    assert all(loss.group == "y" for loss in result.groups.losses)
    group_warnings = [w for w in result.warnings if "group = y" in w and "confirm split" in w]
    assert any("beats linear overall" in w and "loses to linear" in w for w in group_warnings)


def test_the_second_set_rescoring_equals_a_direct_evaluation_and_warns(tuned):
    job, _, second, result = tuned
    validation = result.validation
    assert validation.records == 60 and validation.eval_set_sha256 == second.sha256
    denoiser = ToyPosterior("extremes")
    encoded = encode_records(denoiser, second)
    settings = SamplerSettings("count", "random", 1.0)
    best = schedules.beta(result.best.a, result.best.b)
    direct = evaluate(denoiser, encoded, [best, schedules.named("linear")], 3, settings, "regex", seed=job.seed)
    assert validation.best.score == pytest.approx(direct.scores[0].mean())
    assert validation.baselines["linear"].score == pytest.approx(direct.scores[1].mean())
    assert validation.baselines["linear"].diff == pytest.approx(direct.scores[0].mean() - direct.scores[1].mean())
    assert validation.baselines["linear"].diff_ci[1] < 0
    assert any("loses to linear on the second eval set" in w for w in result.warnings)
    assert validation.nfe > 0 and result.nfe == result.nfe_search + result.nfe_confirm + validation.nfe


def test_result_json_carries_groups_validation_and_warnings(tuned):
    document = json.loads(json.dumps(to_jsonable(tuned[3])))
    assert {"groups", "validation", "warnings"} <= set(document)
    assert {"strata", "losses", "loss_confidence"} <= set(document["groups"])
    assert {"best", "baselines", "records", "groups", "nfe"} <= set(document["validation"])
    assert all(isinstance(w, str) for w in document["warnings"]) and document["warnings"]


def test_the_result_reads_back_typed_from_its_json(tuned):
    """What a job's row or result.json holds comes back as the dataclasses it was written from."""
    from mdmtune.tuning.groups import GroupBreakdown
    from mdmtune.tuning.result import BaselineScore, TuneResult, Validation

    result = tuned[3]
    stored = json.loads(json.dumps(result.to_json()))
    back = TuneResult.from_json(stored)
    assert isinstance(back.groups, GroupBreakdown) and isinstance(back.validation, Validation)
    assert all(isinstance(b, BaselineScore) for b in back.baselines.values())
    assert (back.best.a, back.best.b, back.best.score) == (result.best.a, result.best.b, result.best.score)
    assert back.to_json() == result.to_json()


def test_a_second_set_the_metric_cannot_score_is_refused_before_the_search():
    bad = parse_eval_set(b'{"id": 1, "masked": "_____", "answer": "(unclosed"}\n')
    model = ToyPosterior("extremes")
    with pytest.raises(InvalidInput) as caught:
        tune(spec(), checkpoint=model, eval_set=mixed_set(40), validate_eval_set=bad)
    assert caught.value.field == "validate_eval_set" and model.calls == 0


def _result(confirm_diff: float, second_diff: float, second_ci: list[float]) -> TuneResult:
    best = BestSchedule(a=0.35, b=0.78, score=0.7, ci=[0.6, 0.8])
    confirm = BaselineScore(a=0.5, b=0.5, score=0.7 - confirm_diff, diff=confirm_diff, diff_ci=[0.1, 0.4])
    second = BaselineScore(a=0.5, b=0.5, score=0.6 - second_diff, diff=second_diff, diff_ci=second_ci)
    result = TuneResult(
        objective="quality", steps=8, best=best, baselines={"linear": confirm}, trials=[], nfe=0, wall_time_s=0.0,
        n_trials=1, groups=GroupBreakdown(),
    )  # fmt: skip
    result.validation = Validation("sha", 100, BestSchedule(0.35, 0.78, 0.6), {"linear": second}, GroupBreakdown(), 1)
    return result


def test_warnings_tell_a_significant_loss_from_an_unconfirmed_win_and_stay_silent_on_a_hold():
    significant = shift_warnings(_result(0.3, -0.05, [-0.09, -0.02]))
    assert len(significant) == 1 and "loses to linear on the second eval set" in significant[0]
    assert "beat linear on the confirm split (+0.300)" in significant[0]
    unconfirmed = shift_warnings(_result(0.3, -0.01, [-0.05, 0.03]))
    assert len(unconfirmed) == 1 and "not significant" in unconfirmed[0]
    assert shift_warnings(_result(0.3, 0.1, [0.02, 0.2])) == []


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as done, redirect_stdout(out), redirect_stderr(err):
        main(list(args))
    return done.value.code, out.getvalue(), err.getvalue()


def test_cli_tune_validates_on_a_second_set_and_reports_it(tmp_path):
    first = tmp_path / "first.jsonl"
    second = tmp_path / "second.jsonl"
    first.write_text("".join((EXAMPLES / "eval.jsonl").read_text().splitlines(keepends=True)[:24]))
    second.write_text("".join((EXAMPLES / "eval_pattern.jsonl").read_text().splitlines(keepends=True)[:20]))
    args = ["tune", "--checkpoint", str(EXAMPLES / "checkpoint"), "--eval-set", str(first), "--metric", "sudoku"]
    args += ["--steps", "4", "--trials", "3", "--trials-per-batch", "3", "--out", str(tmp_path / "run")]
    code, out, err = run_cli(*args, "--no-figures", "--validate-eval-set", str(second), "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["validation"]["records"] == 20 and set(document["validation"]["baselines"]) == {
        "linear", "cos2", "sine",
    }  # fmt: skip
    assert isinstance(document["warnings"], list)
    code, out, err = run_cli(*args, "--no-figures", "--validate-eval-set", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "validate_eval_set" in err


def test_the_tune_table_shows_the_second_set_the_groups_and_the_warnings(tuned, capsys):
    from mdmtune.cli.tune import _print

    _print(tuned[3], None)
    out = capsys.readouterr().out
    assert "second eval set: 60 records" in out and "by group" in out
    assert out.count("warning:") == len(tuned[3].warnings) >= 2


def test_a_job_with_a_rival_decoder_validates_its_schedules_on_the_second_set():
    """The rival decoder sits among the baselines on the confirm split; it is no schedule, so the second set
    re-scores the best and the schedule baselines only (it used to fail: "unknown schedule 'threshold'")."""
    job = spec(decoder="threshold", threshold=0.9, remasking="low_confidence", n_trials=6)
    result = tune(job, checkpoint=ToyPosterior("extremes"), eval_set=mixed_set(80), validate_eval_set=mixed_set(20))
    assert "threshold" in result.baselines and result.baselines["threshold"].nfe_per_record is not None
    assert list(result.validation.baselines) == ["linear", "cos2", "sine"]
