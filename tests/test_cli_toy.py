"""`mdmtune toy` keeps README.md's contract: JSON fields tv, kl, support_mass, distribution; exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import product

import pytest

from mdmtune.cli.main import main
from mdmtune.core.schedules import named
from mdmtune.core.toy import run_toy, run_toy_schedule


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """main() in this process, as the console script calls it; returns (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    return done.value.code, captured.out, captured.err


def test_toy_json_has_the_documented_fields_and_the_exact_result(capsys):
    args = ("toy", "--target", "extremes", "--a", "0.5", "--b", "0.3", "--steps", "3", "--sampler", "ancestral")
    code, out, err = run_cli(capsys, *args, "--json")
    assert code == 0, err
    report = json.loads(out)
    sequences = ["".join(p) for p in product("ab", repeat=5)]
    assert sorted(report["distribution"]) == sequences
    assert sum(report["distribution"].values()) == pytest.approx(1.0, abs=1e-12)
    exact = run_toy("extremes", 0.5, 0.3, 3, "ancestral")
    assert report["distribution"] == pytest.approx(exact.distribution, abs=0)
    assert (report["tv"], report["kl"], report["support_mass"]) == (exact.tv, exact.kl, exact.support_mass)
    assert report["distribution"]["aaaaa"] == pytest.approx(report["support_mass"] / 2, abs=1e-15)


def test_toy_named_schedule_and_count_sampler(capsys):
    args = ("toy", "--target", "two-or-three", "--name", "sine", "--steps", "4", "--sampler", "count", "--json")
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    report = json.loads(out)
    assert report["tv"] == run_toy_schedule("two-or-three", named("sine"), 4, "count").tv
    assert report["a"] is None and report["schedule"] == "sine"


def test_toy_without_json_prints_a_table_with_the_metrics(capsys):
    code, out, _ = run_cli(capsys, "toy", "--target", "extremes", "--name", "linear", "--steps", "3")
    assert code == 0
    tv = run_toy_schedule("extremes", named("linear"), 3, "ancestral").tv
    assert "aaaaa" in out and "bbbbb" in out and f"tv {tv:.6g}" in out and "support mass" in out


@pytest.mark.parametrize(
    "args,reason",
    [
        (("--target", "uniform", "--a", "1", "--b", "1", "--steps", "3"), "extremes, two-or-three"),
        (("--target", "extremes", "--a", "1", "--b", "1", "--steps", "3", "--sampler", "x"), "ancestral, count"),
        (("--target", "extremes", "--a", "-1", "--b", "1", "--steps", "3"), "a: must be finite and > 0"),
        (("--target", "extremes", "--a", "1", "--b", "1", "--steps", "0"), "steps"),
        (("--target", "extremes", "--a", "1", "--steps", "3"), "b"),
        (("--target", "extremes", "--name", "cos2", "--a", "1", "--b", "1", "--steps", "3"), "not both"),
        (("--target", "extremes", "--name", "cosine", "--steps", "3"), "linear, cos2, sine"),
        (("--a", "1", "--b", "1", "--steps", "3"), "--target"),
        (("--target", "extremes", "--a", "one", "--b", "1", "--steps", "3"), "--a"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_the_problem(capsys, args, reason):
    code, out, err = run_cli(capsys, "toy", *args, "--json")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and reason in err


def test_the_done_command_runs_as_a_program():
    command = [sys.executable, "-m", "mdmtune.cli.main", "toy", "--target", "extremes", "--a", "0.5", "--b", "0.3"]
    command += ["--steps", "3", "--sampler", "ancestral", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tv"] == run_toy("extremes", 0.5, 0.3, 3, "ancestral").tv
