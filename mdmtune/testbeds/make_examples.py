"""Write the shipped eval sets: `python -m mdmtune.testbeds.make_examples [--out examples] [--n 200]`.

The eval seeds below are used for nothing else (training draws from `mdmtune train --seed`, whose pairs come from a
different stream: the Sudoku training pool has its own fixed seed and eval grids are fresh backtracking grids), so
rerunning this script reproduces the shipped files byte for byte. It also writes the second Sudoku eval set,
`sudoku/eval_pattern.jsonl`: puzzles cut from another grid generator (mdmtune.testbeds.sudoku_pattern), the data on
which `mdmtune compare` shows whether a schedule tuned on `sudoku/eval.jsonl` still holds; and
`bert_arithmetic/eval.jsonl`, two-digit additions for the shipped BERT checkpoint (scripts/train_bert_mdm.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mdmtune.data.evalsets import EvalSet, write_eval_set
from mdmtune.testbeds import get_testbed
from mdmtune.testbeds.arithmetic import ArithmeticTestbed
from mdmtune.testbeds.sudoku_pattern import PATTERN_RECORDS, PATTERN_SEED, pattern_records

EVAL_SEEDS: dict[str, int] = {"sudoku": 90_001, "arithmetic": 90_002}
"""The seed each shipped eval set is drawn from."""


def make_examples(out: Path, n: int = 200) -> dict[str, EvalSet]:
    """Write `out/<testbed>/eval.jsonl` for every testbed in EVAL_SEEDS; returns the written sets."""
    return {
        name: write_eval_set(get_testbed(name).eval_records(n, seed), out / name / "eval.jsonl")
        for name, seed in EVAL_SEEDS.items()
    }


BERT_ARITHMETIC_SEED = 90_004
"""The seed of the BERT example's eval set (two-digit operands, the size that BERT checkpoint was trained on)."""


def make_bert_arithmetic_example(out: Path, n: int = 200) -> EvalSet:
    """Write `out/bert_arithmetic/eval.jsonl`: n additions of 1-2 digit operands ("47+05=" -> "52")."""
    testbed = ArithmeticTestbed(max_digits=2, target_length=16, gen_length=16)
    return write_eval_set(testbed.eval_records(n, BERT_ARITHMETIC_SEED), out / "bert_arithmetic" / "eval.jsonl")


def make_pattern_example(out: Path, n: int = PATTERN_RECORDS) -> EvalSet:
    """Write `out/sudoku/eval_pattern.jsonl`: n 45-blank puzzles from the pattern generator, seed PATTERN_SEED."""
    return write_eval_set(pattern_records(n, PATTERN_SEED), out / "sudoku" / "eval_pattern.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("examples"))
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    for name, eval_set in make_examples(args.out, args.n).items():
        print(f"{args.out / name / 'eval.jsonl'}: {len(eval_set)} records, sha256 {eval_set.sha256}")
    pattern = make_pattern_example(args.out)
    print(f"{args.out / 'sudoku' / 'eval_pattern.jsonl'}: {len(pattern)} records, sha256 {pattern.sha256}")
    bert = make_bert_arithmetic_example(args.out, args.n)
    print(f"{args.out / 'bert_arithmetic' / 'eval.jsonl'}: {len(bert)} records, sha256 {bert.sha256}")


if __name__ == "__main__":
    main()
