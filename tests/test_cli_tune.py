"""`mdmtune tune` as a user runs it: the energy form, the quality form on a real native checkpoint written in the
test, a steps sweep, the figures and result file, and bad arguments (exit 2, one line naming the field)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.special import betainc

from mdmtune.cli.main import main


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(args)
    except SystemExit as done:
        code = done.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def chord_energy(a: float, b: float, steps: int, wa: float, wb: float) -> float:
    t = np.arange(steps + 1) / steps
    theta = 0.5 * math.pi * betainc(a, b, t)
    return float(4 * np.sum(2 * (1 - np.cos(np.diff(theta))) / np.diff(betainc(wa, wb, t))))


def test_energy_tune_json_carries_the_documented_fields(capsys):
    code, out, _ = run_cli(
        [
            "tune",
            "--objective",
            "energy",
            "--steps",
            "8",
            "--weight-a",
            "0.8",
            "--weight-b",
            "0.3",
            "--trials",
            "80",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["objective"] == "energy" and doc["steps"] == 8 and doc["nfe"] == 0
    assert len(doc["trials"]) == 80
    assert {"a", "b", "value", "state"} <= set(doc["trials"][0])
    best = doc["best"]
    assert best["score"] == pytest.approx(chord_energy(best["a"], best["b"], 8, 0.8, 0.3), rel=1e-10)
    for name, (a, b) in {"linear": (0.5, 0.5), "cos2": (1.0, 1.0)}.items():
        base = doc["baselines"][name]
        assert (base["a"], base["b"]) == (a, b)
        assert base["score"] == pytest.approx(chord_energy(a, b, 8, 0.8, 0.3), rel=1e-10)
        assert best["score"] <= base["score"]
        assert "diff_ci" in base


def test_energy_tune_prints_a_table_and_writes_figures_when_given_out(capsys, tmp_path):
    code, out, _ = run_cli(
        ["tune", "--objective", "energy", "--steps", "6", "--trials", "30", "--out", str(tmp_path)], capsys
    )
    assert code == 0
    assert "best" in out and "linear" in out and "cos2" in out
    assert (tmp_path / "landscape.png").stat().st_size > 0
    assert (tmp_path / "schedule.png").stat().st_size > 0
    assert json.loads((tmp_path / "result.json").read_text())["objective"] == "energy"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--objective", "energy", "--steps", "0"], "steps"),
        (["--objective", "energy", "--steps", "4,x"], "steps"),
        (["--objective", "energy", "--steps", "4", "--a-bounds", "3,1"], "a_bounds"),
        (["--objective", "energy", "--steps", "4", "--b-bounds", "0,1"], "b_bounds"),
        (["--objective", "energy", "--steps", "4", "--search-algorithm", "grid"], "search_algorithm"),
        (["--objective", "energy", "--steps", "4", "--weight-a", "-1"], "weight_a"),
        (["--objective", "energy", "--steps", "4", "--trials", "0"], "n_trials"),
        (["--objective", "quantity", "--steps", "4"], "objective"),
        (["--objective", "energy", "--steps", "4", "--checkpoint", "x"], "checkpoint"),
        (["--steps", "4"], "checkpoint"),
        (["--steps", "8", "--gen-length", "4", "--checkpoint", "x", "--eval-set", "y"], "steps"),
        (
            ["--steps", "8", "--gen-length", "16", "--block-length", "5", "--checkpoint", "x", "--eval-set", "y"],
            "block_length",
        ),
        (["--steps", "4", "--metric", "bleu", "--checkpoint", "x", "--eval-set", "y"], "metric"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_the_field(args, field, capsys):
    code, out, err = run_cli(["tune", *args], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and f"{field}:" in err


@pytest.fixture(scope="module")
def arithmetic_job(tmp_path_factory):
    """A random reference MDM saved as a native checkpoint, and an arithmetic eval set, both written here."""
    from mdmtune.data.evalsets import write_eval_set
    from mdmtune.models.codec import CharCodec
    from mdmtune.models.native import save_native
    from mdmtune.models.reference import ReferenceConfig, ReferenceMDM
    from mdmtune.testbeds import get_testbed

    folder = tmp_path_factory.mktemp("job")
    torch.manual_seed(0)
    testbed = get_testbed("arithmetic")
    codec = CharCodec.for_alphabet(testbed.alphabet, eot_text=testbed.pad_char)
    config = ReferenceConfig(
        vocab_size=codec.vocab_size,
        max_len=testbed.context_length + testbed.target_length,
        mask_token_id=codec.mask_token_id,
        pad_token_id=codec.eot_token_id,
        d_model=16,
        n_layers=1,
        n_heads=2,
        d_ff=32,
    )
    checkpoint = save_native(ReferenceMDM(config), codec, folder / "ckpt")
    write_eval_set(testbed.eval_records(10, seed=0), folder / "eval.jsonl")
    return checkpoint, folder / "eval.jsonl", testbed


def test_quality_tune_json_and_result_file(arithmetic_job, capsys, tmp_path):
    checkpoint, eval_set, testbed = arithmetic_job
    code, out, err = run_cli(
        [
            "tune",
            "--checkpoint",
            str(checkpoint),
            "--eval-set",
            str(eval_set),
            "--steps",
            "4",
            "--gen-length",
            str(testbed.gen_length),
            "--metric",
            testbed.metric,
            "--trials",
            "5",
            "--trials-per-batch",
            "3",
            "--out",
            str(tmp_path),
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["objective"] == "quality" and doc["steps"] == 4 and doc["nfe"] > 0
    assert {"a", "b", "score", "ci"} <= set(doc["best"])
    assert set(doc["baselines"]) == {"linear", "cos2", "sine"}
    assert all("diff_ci" in b for b in doc["baselines"].values())
    assert len(doc["trials"]) == 5
    assert (tmp_path / "study.db").exists() and (tmp_path / "landscape.png").exists()
    assert json.loads((tmp_path / "result.json").read_text())["best"] == doc["best"]
    assert "trials" in err  # the progress bar went to stderr


def test_quality_steps_sweep_reports_quality_vs_steps(arithmetic_job, capsys, tmp_path):
    checkpoint, eval_set, testbed = arithmetic_job
    code, out, err = run_cli(
        [
            "tune",
            "--checkpoint",
            str(checkpoint),
            "--eval-set",
            str(eval_set),
            "--steps",
            "2,4",
            "--gen-length",
            str(testbed.gen_length),
            "--metric",
            testbed.metric,
            "--trials",
            "3",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 0, err
    assert "quality vs steps" in out
    assert (tmp_path / "quality_vs_steps.png").exists()
    doc = json.loads((tmp_path / "result.json").read_text())
    assert [p["steps"] for p in doc["points"]] == [2, 4] and doc["linear_steps"] == 4
    assert [r["steps"] for r in doc["results"]] == [2, 4]


def hamilton(a: float, b: float, steps: int, masked: int) -> list[int]:
    """K_k written out here: the largest-remainder apportionment of `masked` over alpha's increments."""
    t = np.arange(steps + 1) / steps
    quotas = masked * np.diff(np.sin(0.5 * math.pi * betainc(a, b, t)) ** 2)
    counts = np.floor(quotas).astype(int)
    for k in sorted(range(steps), key=lambda k: (-(quotas[k] - counts[k]), k))[: masked - counts.sum()]:
        counts[k] += 1
    return counts.tolist()


ENERGY_PLAN_ARGS = ["tune", "--objective", "energy", "--steps", "8", "--weight-a", "2", "--weight-b", "0.5"]


def test_tune_prints_the_per_step_plan_of_the_best(capsys):
    code, out, _ = run_cli([*ENERGY_PLAN_ARGS, "--trials", "40", "--gen-length", "45", "--json"], capsys)
    assert code == 0
    best = json.loads(out)["best"]
    expected = hamilton(best["a"], best["b"], 8, 45)
    code, out, _ = run_cli([*ENERGY_PLAN_ARGS, "--trials", "40", "--gen-length", "45"], capsys)
    assert code == 0
    plan = [line for line in out.splitlines() if line.startswith("per-step plan")]
    assert plan == [f"per-step plan: tokens unmasked at each of 8 steps (45 masked): {' '.join(map(str, expected))}"]


def test_tune_prints_one_plan_line_per_block(capsys):
    args = [*ENERGY_PLAN_ARGS, "--trials", "20", "--gen-length", "32", "--block-length", "8"]
    code, out, _ = run_cli([*args, "--json"], capsys)
    assert code == 0
    best = json.loads(out)["best"]
    code, out, _ = run_cli(args, capsys)
    assert code == 0
    blocks = [line.split(":", 1)[1].split() for line in out.splitlines() if line.strip().startswith("block ")]
    assert len(blocks) == 4 and all([int(c) for c in block] == hamilton(best["a"], best["b"], 2, 8) for block in blocks)
    assert "4 blocks of 2 steps" in out


def test_print_result_shows_the_best_rounded_and_its_plan():
    from mdmtune.tuning import TuneSpec, tune

    result = tune(TuneSpec(objective="energy", steps=8, weight_a=2.0, weight_b=0.5, n_trials=30, gen_length=45))
    text = str(result)
    expected = " ".join(map(str, hamilton(result.best.a, result.best.b, 8, 45)))
    assert f"per-step plan: tokens unmasked at each of 8 steps (45 masked): {expected}" in text.splitlines()
    assert f"a={result.best.a:.4g} b={result.best.b:.4g}, E_N {result.best.score:.4f}" in text
    assert repr(result.best.score) not in text  # rounded, not every digit
