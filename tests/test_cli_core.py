"""`mdmtune schedule` and `mdmtune energy` keep README.md's contract: JSON fields, "inf", exit 2 on bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from scipy.special import beta as beta_function

from mdmtune.cli.main import main

PI2 = math.pi**2


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """main() in this process, as the console script calls it; returns (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def run_json(capsys, *args: str) -> dict:
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_schedule_json_carries_the_grid_gamma_alpha_and_counts(capsys):
    report = run_json(capsys, "schedule", "--a", "0.8", "--b", "0.3", "--steps", "8", "--masked", "37")
    t = np.arange(9) / 8
    gamma = stats.beta.cdf(t, 0.8, 0.3)
    assert report["t"] == pytest.approx(t.tolist(), abs=1e-15)
    assert report["gamma"] == pytest.approx(gamma.tolist(), abs=1e-12)
    assert report["alpha"] == pytest.approx((np.sin(np.pi / 2 * gamma) ** 2).tolist(), abs=1e-12)
    assert len(report["counts"]) == 8 and sum(report["counts"]) == 37
    assert all(isinstance(k, int) and k >= 0 for k in report["counts"])


def test_schedule_without_masked_has_no_counts(capsys):
    report = run_json(capsys, "schedule", "--a", "1", "--b", "1", "--steps", "3")
    assert "counts" not in report and len(report["alpha"]) == 4


def test_named_linear_counts_are_llada_counts(capsys):
    # LLaDA: base M // N = 2, the remainder 2 going to the first steps
    report = run_json(capsys, "schedule", "--name", "linear", "--steps", "4", "--masked", "10")
    assert report["counts"] == [3, 3, 2, 2]
    assert report["alpha"] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0], abs=1e-12)
    assert (report["a"], report["b"]) == (0.5, 0.5)


def test_sine_has_no_beta_parameters_and_is_sin(capsys):
    report = run_json(capsys, "schedule", "--name", "sine", "--steps", "4")
    assert report["a"] is None and report["b"] is None
    assert report["alpha"] == pytest.approx(np.sin(np.pi / 2 * np.arange(5) / 4).tolist(), abs=1e-12)


def test_blocks_give_one_plan_per_block_masking_whole_blocks_by_default(capsys):
    args = ("schedule", "--a", "1", "--b", "0.2", "--steps", "8", "--gen-length", "32", "--block-length", "16")
    report = run_json(capsys, *args)
    assert len(report["t"]) == 9
    assert len(report["block_counts"]) == 2
    assert all(len(plan) == 4 and sum(plan) == 16 for plan in report["block_counts"])
    assert report["counts"] == report["block_counts"][0] + report["block_counts"][1]
    with_masked = run_json(capsys, *args, "--masked", "5")
    assert all(sum(plan) == 5 for plan in with_masked["block_counts"])


def test_energy_json_writes_inf_for_linear_under_the_uniform_weight(capsys):
    report = run_json(capsys, "energy", "--a", "0.5", "--b", "0.5")
    assert report["continuous"] == "inf"
    assert "discrete" not in report


def test_energy_json_carries_continuous_and_discrete(capsys):
    report = run_json(capsys, "energy", "--a", "0.8", "--b", "0.8", "--steps", "64")
    assert report["continuous"] == pytest.approx(PI2 * beta_function(0.6, 0.6) / beta_function(0.8, 0.8) ** 2)
    assert isinstance(report["discrete"], float)
    assert report["continuous"] * 0.95 < report["discrete"] < report["continuous"]


def test_energy_at_the_weight_point_is_pi2(capsys):
    report = run_json(capsys, "energy", "--a", "0.8", "--b", "0.3", "--weight-a", "0.8", "--weight-b", "0.3")
    assert report["continuous"] == pytest.approx(PI2, rel=1e-12)


def test_energy_of_sine_by_name(capsys):
    assert run_json(capsys, "energy", "--name", "sine")["continuous"] == "inf"
    finite = run_json(capsys, "energy", "--name", "sine", "--weight-a", "0.5", "--steps", "256")
    assert finite["continuous"] > PI2 and finite["discrete"] == pytest.approx(finite["continuous"], rel=1e-3)


def test_without_json_a_readable_table_goes_to_stdout(capsys):
    code, out, err = run_cli(capsys, "energy", "--a", "0.5", "--b", "0.5", "--steps", "8")
    assert code == 0 and err == ""
    assert "continuous" in out and "inf" in out and "diverges" in out
    code, out, _ = run_cli(capsys, "schedule", "--a", "1", "--b", "1", "--steps", "4", "--masked", "9")
    assert code == 0 and "alpha" in out and "K_k" in out


@pytest.mark.parametrize(
    ("args", "named_in_reason"),
    [
        (["schedule", "--a", "0", "--b", "1", "--steps", "3"], "a"),
        (["schedule", "--a", "1", "--b", "-2", "--steps", "3"], "b"),
        (["schedule", "--a", "1", "--b", "1", "--steps", "0"], "steps"),
        (["schedule", "--name", "sine", "--a", "1", "--steps", "3"], "name"),
        (["schedule", "--name", "cosine", "--steps", "3"], "name"),
        (["schedule", "--a", "1", "--steps", "3"], "b"),
        (["schedule", "--a", "1", "--b", "1", "--steps", "6", "--gen-length", "32", "--block-length", "5"], "block"),
        (["schedule", "--a", "1", "--b", "1", "--steps", "6", "--gen-length", "32", "--block-length", "8"], "steps"),
        (["schedule", "--a", "1", "--b", "1", "--steps", "4", "--gen-length", "32"], "block"),
        (
            [
                "schedule",
                "--a",
                "1",
                "--b",
                "1",
                "--steps",
                "4",
                "--gen-length",
                "8",
                "--block-length",
                "4",
                "--masked",
                "5",
            ],
            "masked",
        ),
        (["schedule", "--a", "1", "--b", "1", "--steps", "4", "--masked", "-1"], "masked"),
        (["schedule", "--a", "1", "--b", "1"], "steps"),
        (["energy", "--a", "nan", "--b", "1"], "a"),
        (["energy", "--a", "1", "--b", "x"], "b"),
        (["energy", "--a", "1", "--b", "1", "--weight-a", "0"], "weight_a"),
        (["energy", "--a", "1", "--b", "1", "--steps", "0"], "steps"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_the_problem(capsys, args, named_in_reason):
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1
    assert named_in_reason in err


def test_the_module_entry_point_runs_as_a_program():
    command = [sys.executable, "-m", "mdmtune.cli.main", "energy", "--a", "0.5", "--b", "0.5", "--steps", "4", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["continuous"] == "inf" and math.isfinite(report["discrete"])
    bad = subprocess.run([*command[:3], "energy", "--a", "-1", "--b", "1"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1


def test_the_command_line_starts_without_importing_torch_optuna_or_the_web_stack():
    """Commands import their heavy dependencies when they run, so `mdmtune schedule` or `--help` start in a moment."""
    code = (
        "import sys; import mdmtune.cli.main as m; m._register_commands(); "
        "print(sorted(n for n in ('torch', 'optuna', 'fastapi', 'sqlalchemy', 'scipy.stats') if n in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
