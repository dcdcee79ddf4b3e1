"""A second Sudoku eval set from another grid generator: one pattern grid under Sudoku's symmetries.

Why: a schedule tuned on one eval set is only worth deploying if it holds on the data the user will run. The
shipped Sudoku eval set cuts puzzles from fresh backtracking grids (general grids); this one cuts them from the
orbit of a single regular grid, cell (r, c) = (3 (r mod 3) + r div 3 + c) mod 9 + 1, under random digit
relabelling, row and column shuffles inside bands and stacks, band and stack shuffles and transposition. Those
grids are valid Sudoku, but far more regular than backtracking grids (every band repeats one row pattern shifted),
so the same model meets a shifted distribution of puzzles. Every puzzle has the same number of blanks (45 by
default), so the schedule's plan is the same for every record and the shift is the grids', not the blank count's.

Written by `python -m mdmtune.testbeds.make_examples` (the seed below, used for nothing else) into
examples/sudoku/eval_pattern.jsonl. Pure numpy: never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import numpy as np

from mdmtune.errors import InvalidInput
from mdmtune.testbeds.base import MASK_CHAR, check_count
from mdmtune.testbeds.sudoku import blank_cells, transformed_grid

PATTERN_SEED = 90_003
"""The seed of the shipped pattern eval set."""

PATTERN_BLANKS = 45
PATTERN_RECORDS = 600

BASE_PATTERN: np.ndarray = np.array(
    [[(3 * (r % 3) + r // 3 + c) % 9 + 1 for c in range(9)] for r in range(9)], dtype=np.int8
)
"""The regular grid whose orbit under Sudoku's symmetries the puzzles are cut from."""


def pattern_grid(rng: np.random.Generator) -> str:
    """A valid grid, 81 digits row by row: BASE_PATTERN under a random symmetry."""
    return transformed_grid(BASE_PATTERN, rng)


def pattern_records(n: int, seed: int, blanks: int = PATTERN_BLANKS, mask_char: str = MASK_CHAR) -> list[dict]:
    """`n` infill records with exactly `blanks` cells masked, drawn from `seed` alone."""
    if isinstance(blanks, bool) or not isinstance(blanks, int) or not 1 <= blanks <= 80:
        raise InvalidInput("blanks", f"must be an integer in [1, 80], got {blanks!r}")
    rng = np.random.default_rng(seed)
    records = []
    for i in range(check_count(n)):
        solution = pattern_grid(rng)
        masked = blank_cells(solution, blanks, rng, mask_char)
        records.append({"id": f"pattern-{seed}-{i:04d}", "masked": masked, "answer": solution, "blanks": blanks})
    return records
