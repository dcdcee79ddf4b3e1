"""`mdmtune compare`: same records and noise for every schedule, Wilson intervals, paired bootstrap differences and
per-group results, checked against `mdmtune sample`'s per-record scores with the statistics recomputed here in numpy.

The model is the shipped Sudoku checkpoint (a real trained MDM) on the first records of the shipped eval set, so
scores differ between schedules and records and the paired statistics have something to show.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
import torch

from mdmtune.cli.main import main
from mdmtune.errors import InvalidInput
from mdmtune.tuning.compare import parse_schedules, with_baseline
from mdmtune.tuning.groups import MIN_JUDGED_RECORDS, bin_labels, breakdown

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "sudoku"
CHECKPOINT = EXAMPLES / "checkpoint"
RECORDS = 36
RESAMPLES = 4000


def run_cli(*args: str) -> tuple[int, str, str]:
    """The `mdmtune` command in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as done, redirect_stdout(out), redirect_stderr(err):
        main(list(args))
    return done.value.code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def eval_file(tmp_path_factory) -> Path:
    """The first records of the shipped Sudoku set; every third one tagged group "hard", the rest "easy"."""
    torch.set_num_threads(1)
    lines = (EXAMPLES / "eval.jsonl").read_text().splitlines()[:RECORDS]
    records = [json.loads(line) for line in lines]
    for i, record in enumerate(records):
        record["group"] = "hard" if i % 3 == 0 else "easy"
    path = tmp_path_factory.mktemp("compare") / "eval.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def sample_json(eval_file: Path, *schedule: str) -> dict:
    args = ["sample", "--checkpoint", str(CHECKPOINT), "--eval-set", str(eval_file), "--metric", "sudoku"]
    code, out, err = run_cli(*args, "--steps", "8", "--seed", "3", *schedule, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def reports(eval_file):
    """`mdmtune sample` for linear and the tuned point, and one `mdmtune compare` of both (and cos2)."""
    linear = sample_json(eval_file, "--name", "linear")
    tuned = sample_json(eval_file, "--a", "0.3475", "--b", "0.7776")
    args = ["compare", "--checkpoint", str(CHECKPOINT), "--eval-set", str(eval_file), "--metric", "sudoku"]
    args += ["--steps", "8", "--seed", "3", "--schedules", "0.3475:0.7776,cos2", "--baseline", "linear"]
    code, out, err = run_cli(*args, "--resamples", str(RESAMPLES), "--per-record", "--json")
    assert code == 0, err
    return linear, tuned, json.loads(out)


def wilson(successes: float, n: int) -> tuple[float, float]:
    """The Wilson score interval at 95%, written out from its formula."""
    z = NormalDist().inv_cdf(0.975)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap(first: np.ndarray, second: np.ndarray, seed: int, resamples: int) -> tuple[float, float]:
    """Percentile bootstrap of mean(first - second), records drawn with replacement (numpy's PCG64 from `seed`)."""
    differences = first - second
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, differences.size, size=(resamples, differences.size))
    means = differences[draws].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)


def test_compare_reproduces_the_paired_difference_and_intervals_from_sample_scores(reports):
    linear, tuned, report = reports
    first = np.array([r["score"] for r in tuned["records"]])
    second = np.array([r["score"] for r in linear["records"]])
    rows = {row["name"]: row for row in report["schedules"]}
    assert report["baseline"] == "linear" and list(rows) == ["linear", "0.3475:0.7776", "cos2"]
    assert report["per_record"]["0.3475:0.7776"] == first.tolist()
    assert report["per_record"]["linear"] == second.tolist()
    row = rows["0.3475:0.7776"]
    assert (row["a"], row["b"]) == (0.3475, 0.7776)
    assert row["score"] == pytest.approx(tuned["mean_score"])
    assert row["diff_vs_baseline"] == pytest.approx(first.mean() - second.mean())
    assert row["diff_ci"] == pytest.approx(bootstrap(first, second, seed=3, resamples=RESAMPLES), abs=1e-12)
    assert row["ci"] == pytest.approx(wilson(first.sum(), first.size), abs=1e-12)
    assert rows["linear"]["ci"] == pytest.approx(wilson(second.sum(), second.size), abs=1e-12)
    assert rows["linear"]["diff_vs_baseline"] == 0 and rows["linear"]["diff_ci"] == [0, 0]
    assert row["nfe"] == tuned["nfe"] and rows["linear"]["nfe"] == linear["nfe"]
    assert report["nfe"] == sum(r["nfe"] for r in report["schedules"])
    assert first.mean() != second.mean()  # the schedules really differ here: the comparison is not vacuous


def test_compare_breaks_results_down_by_the_group_field_and_the_masked_count(reports, eval_file):
    linear, tuned, report = reports
    records = [json.loads(line) for line in eval_file.read_text().splitlines()]
    first = np.array([r["score"] for r in tuned["records"]])
    second = np.array([r["score"] for r in linear["records"]])
    groups = {g["label"]: g for g in report["groups"]["group"]}
    assert set(groups) == {"easy", "hard"}
    for label, group in groups.items():
        members = np.array([r["group"] == label for r in records])
        assert group["records"] == members.sum()
        assert group["scores"]["linear"] == pytest.approx(second[members].mean())
        assert group["scores"]["0.3475:0.7776"] == pytest.approx(first[members].mean())
        diff = next(d for d in group["diffs"] if d["schedule"] == "0.3475:0.7776")
        assert diff["reference"] == "linear"
        assert diff["diff"] == pytest.approx(first[members].mean() - second[members].mean())
        assert diff["diff_ci"] == pytest.approx(bootstrap(first[members], second[members], 3, RESAMPLES), abs=1e-12)
    blanks = np.array([r["blanks"] for r in records])
    masked = report["groups"]["masked"]
    assert sum(g["records"] for g in masked) == RECORDS and 2 <= len(masked) <= 4
    for group in masked:
        low, _, high = group["label"].partition("-")
        members = (blanks >= int(low)) & (blanks <= int(high or low))
        assert group["records"] == members.sum()
        assert group["scores"]["linear"] == pytest.approx(second[members].mean())


def test_compare_prints_a_table_with_the_groups(eval_file):
    args = ["compare", "--checkpoint", str(CHECKPOINT), "--eval-set", str(eval_file), "--metric", "sudoku"]
    code, out, err = run_cli(*args, "--steps", "4", "--schedules", "sine", "--resamples", "200")
    assert code == 0, err
    assert "mdmtune compare" in out and "sine" in out and "linear" in out and "by group" in out


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["--schedules", "linear,bogus"], "schedules"),
        (["--schedules", "0:1"], "schedules"),
        (["--schedules", "cos2,cos2"], "schedules"),
        (["--schedules", "1:x"], "schedules"),
        (["--schedules", "cos2", "--baseline", "best"], "baseline"),
        (["--schedules", "cos2", "--resamples", "5"], "resamples"),
        (["--schedules", "cos2", "--metric", "nope"], "metric"),
    ],
)
def test_bad_arguments_exit_2_naming_the_field(eval_file, extra, field):
    args = ["compare", "--checkpoint", str(CHECKPOINT), "--eval-set", str(eval_file), "--steps", "4"]
    args += ["--metric", "sudoku"] if "--metric" not in extra else []
    code, out, err = run_cli(*args, *extra)
    assert code == 2 and out == ""
    assert field in err and len(err.strip().splitlines()) == 1


def test_schedule_lists_parse_names_and_beta_points_and_add_the_baseline_in_front():
    items = parse_schedules("cos2, 0.3475:0.7776 ,sine")
    assert [i.name for i in items] == ["cos2", "0.3475:0.7776", "sine"]
    assert (items[1].schedule.a, items[1].schedule.b) == (0.3475, 0.7776)
    assert [i.name for i in with_baseline(items, "linear")] == ["linear", "cos2", "0.3475:0.7776", "sine"]
    assert [i.name for i in with_baseline(items, "sine")] == ["cos2", "0.3475:0.7776", "sine"]
    with pytest.raises(InvalidInput) as caught:
        parse_schedules(",".join(["linear"] + [f"1:{k + 1}" for k in range(40)]))
    assert caught.value.field == "schedules"


def test_numeric_strata_are_contiguous_ranges_of_about_equal_counts():
    values = np.repeat(np.arange(40, 51), 10)  # 11 distinct counts, 10 records each
    labels = bin_labels(values)
    assert len(set(labels)) == 4
    ranges = sorted({(int(label.partition("-")[0]), int(label.rpartition("-")[2])) for label in labels})
    assert ranges[0][0] == 40 and ranges[-1][1] == 50
    for (_, high), (low, _) in itertools.pairwise(ranges):
        assert low == high + 1  # no gaps, no overlaps
    counts = [labels.count(label) for label in set(labels)]
    assert max(counts) - min(counts) <= 10
    assert bin_labels([3, 5, 3]) == ["3", "5", "3"]  # few distinct values: each its own group


def test_a_group_where_a_schedule_loses_is_named_and_a_noisy_one_is_not():
    """'hard': the schedule fails every record the reference solves; 'noise': one record apart; 'tiny': too few."""
    rng = np.random.default_rng(0)
    hard, noise, tiny = 30, 40, MIN_JUDGED_RECORDS - 1
    reference = np.concatenate([np.ones(hard), rng.integers(0, 2, noise), np.ones(tiny)])
    schedule = np.concatenate([np.zeros(hard), reference[hard : hard + noise], np.zeros(tiny)])
    schedule[hard] = 1 - reference[hard]
    labels = ["hard"] * hard + ["noise"] * noise + ["tiny"] * tiny
    result = breakdown(np.stack([schedule, reference]), ["tuned", "linear"], [(0, 1)], {"group": labels})
    assert [(loss.group, loss.schedule, loss.reference) for loss in result.losses] == [("hard", "tuned", "linear")]
    assert result.loss_confidence == pytest.approx(1 - 0.05 / 2)  # two judged groups: Bonferroni over both
    loss = result.losses[0]
    assert loss.diff == -1.0 and loss.diff_ci[1] < 0 and loss.records == hard
    tiny_group = next(g for g in result.strata["group"] if g.label == "tiny")
    assert tiny_group.diffs[0].diff == -1.0  # reported, but too small to be judged


def test_completion_records_are_stratified_by_prompt_length_and_their_group_field(tmp_path):
    """Prompt length in tokens (the character codec: one per character); a record without `group` is "(none)"."""
    from _model_builders import tiny_reference

    from mdmtune.data.evalsets import parse_eval_set
    from mdmtune.models.loading import load_denoiser
    from mdmtune.models.native import save_native
    from mdmtune.tuning.evaluation import encode_records
    from mdmtune.tuning.groups import NO_GROUP, record_strata

    model = load_denoiser(save_native(*tiny_reference(max_len=32), tmp_path / "tiny"), device="cpu")
    prompts = ["1+1=", "12+34=", "1+1=", "123+456="]
    lines = [
        {"id": i, "prompt": p, "answer": "0", **({"group": i % 2} if i < 3 else {})} for i, p in enumerate(prompts)
    ]
    eval_set = parse_eval_set("".join(json.dumps(line) + "\n" for line in lines).encode())
    encoded = encode_records(model, eval_set, gen_length=4)
    strata = record_strata(encoded, [0, 1, 2, 3])
    assert strata["prompt_length"] == [str(len(p)) for p in prompts]
    assert strata["group"] == ["0", "1", "0", NO_GROUP]
    assert set(record_strata(encoded, [0, 2])) == set()  # one prompt length, one group: nothing to break down


def test_a_group_field_with_too_many_values_keeps_the_most_frequent_and_lumps_the_rest():
    from mdmtune.tuning.groups import MAX_GROUPS, OTHER, _capped

    labels = ["big"] * 5 + [f"g{i:03d}" for i in range(MAX_GROUPS + 10)]
    capped = _capped(labels)
    assert len(set(capped)) == MAX_GROUPS and capped[:5] == ["big"] * 5
    assert capped.count(OTHER) == len(labels) - 5 - (MAX_GROUPS - 2)
    assert _capped(["a", "b"]) == ["a", "b"]
