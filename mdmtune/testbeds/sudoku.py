"""Testbed "sudoku": 9x9 Sudoku infill with 40-50 blanks, scored by validity and consistency with the givens.

Every cell is a hard token (no easy padding), which is why its best schedule should differ from the arithmetic
testbed's. Grids come from randomized backtracking, so they are general Sudoku grids, not one pattern's orbit.
Training draws a base grid from a fixed pool (built once by backtracking) and applies a random validity-preserving
symmetry (digit relabelling, row and column shuffles inside bands and stacks, band and stack shuffles, transpose):
cheap per pair, yet over 10^12 variants per base grid. Eval grids are fresh backtracking grids from the eval seed.
Uniqueness of a puzzle's solution is not required: the metric accepts any valid grid consistent with the givens.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from mdmtune.errors import InvalidInput
from mdmtune.testbeds.base import MASK_CHAR, Testbed, check_count

DIGITS = "123456789"
_POOL_SEED = 20_240_917
_POOL_SIZE = 512
_UNITS: tuple[tuple[int, ...], ...] = (
    tuple(tuple(9 * r + c for c in range(9)) for r in range(9))
    + tuple(tuple(9 * r + c for r in range(9)) for c in range(9))
    + tuple(
        tuple(9 * (3 * br + r) + 3 * bc + c for r in range(3) for c in range(3)) for br in range(3) for bc in range(3)
    )
)
_CELL = re.compile(r"\d|\[[^\]]*\]|<[^>]*>|[^\s|+\-,;:]")
"""One cell of a written grid: a digit, a bracketed or angled mask token ([MASK], <mask>), or any other single
character that is not white space or a separator."""


def random_grid(rng: np.random.Generator) -> str:
    """A full valid grid, 81 digits row by row, by backtracking with random candidate order (most constrained first)."""
    grid = [0] * 81
    rows, cols, boxes = [0] * 9, [0] * 9, [0] * 9

    def fill(empty: list[int]) -> bool:
        if not empty:
            return True
        best, best_free = -1, None
        for cell in empty:  # the cell with the fewest candidates keeps the search short
            r, c = divmod(cell, 9)
            free = [d for d in range(1, 10) if not (rows[r] | cols[c] | boxes[3 * (r // 3) + c // 3]) >> d & 1]
            if best_free is None or len(free) < len(best_free):
                best, best_free = cell, free
                if len(free) <= 1:
                    break
        r, c = divmod(best, 9)
        b = 3 * (r // 3) + c // 3
        rest = [cell for cell in empty if cell != best]
        for d in rng.permutation(best_free).tolist():
            bit = 1 << d
            grid[best] = d
            rows[r] |= bit
            cols[c] |= bit
            boxes[b] |= bit
            if fill(rest):
                return True
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
        grid[best] = 0
        return False

    if not fill(list(range(81))):  # an empty grid always has a completion
        raise AssertionError("backtracking failed on an empty grid")
    return "".join(map(str, grid))


@functools.cache
def _training_pool() -> np.ndarray:
    """Base grids for training pairs, (POOL, 9, 9) int8; fixed, so a training run depends on its own seed only."""
    rng = np.random.default_rng(_POOL_SEED)
    return np.array([[int(ch) for ch in random_grid(rng)] for _ in range(_POOL_SIZE)], dtype=np.int8).reshape(-1, 9, 9)


def _line_order(rng: np.random.Generator) -> np.ndarray:
    """A random order of 9 rows (or columns) that keeps bands (stacks) together: bands shuffled, rows inside too."""
    return np.concatenate([3 * band + rng.permutation(3) for band in rng.permutation(3)])


def transformed_grid(base: np.ndarray, rng: np.random.Generator) -> str:
    """`base` (9x9 digits) under a random symmetry of Sudoku; valid grids map to valid grids."""
    relabel = np.concatenate([[0], 1 + rng.permutation(9)])
    grid = relabel[base][_line_order(rng)][:, _line_order(rng)]
    if rng.random() < 0.5:
        grid = grid.T
    return "".join(map(str, grid.ravel().tolist()))


def is_valid_grid(digits: str) -> bool:
    """True when `digits` is 81 characters 1-9 with every row, column and 3x3 box a permutation of 1-9."""
    if len(digits) != 81 or any(ch not in DIGITS for ch in digits):
        return False
    return all(len({digits[i] for i in unit}) == 9 for unit in _UNITS)


def grid_digits(text: str) -> str:
    """The digits of a decoded output, dropping white space, separators and anything else that is not a digit."""
    return "".join(ch for ch in text if ch.isdigit() and ch.isascii())


def givens(masked: str) -> list[str | None]:
    """The 81 cells of a masked grid: the given digit, or None for a blank (any mask symbol, or 0 / '.')."""
    cells = [cell if cell in DIGITS else None for cell in _CELL.findall(masked)]
    if len(cells) != 81:
        raise InvalidInput("masked", f"a Sudoku grid has 81 cells, this one has {len(cells)}: {masked!r}")
    return cells


def solves(output: str, masked: str) -> bool:
    """True when the digits of `output` form a valid grid that keeps every given digit of `masked`."""
    digits = grid_digits(output)
    return is_valid_grid(digits) and all(g is None or g == d for g, d in zip(givens(masked), digits, strict=True))


def blank_cells(solution: str, blanks: int, rng: np.random.Generator, mask_char: str = MASK_CHAR) -> str:
    """`solution` with `blanks` cells, chosen uniformly, replaced by `mask_char`."""
    hidden = set(rng.choice(81, size=blanks, replace=False).tolist())
    return "".join(mask_char if i in hidden else ch for i, ch in enumerate(solution))


@dataclass(frozen=True)
class SudokuTestbed(Testbed):
    """Sudoku infill: train on full solutions (the trainer masks cells at random), evaluate on 40-50 blanks."""

    name: str = "sudoku"
    alphabet: str = DIGITS
    context_length: int = 0
    target_length: int = 81
    metric: str = "sudoku"
    kind: str = "infill"
    gen_length: int | None = None
    position_groups: tuple[tuple[int, ...], ...] = (
        tuple(i // 9 for i in range(81)),
        tuple(i % 9 for i in range(81)),
        tuple(3 * (i // 27) + (i % 9) // 3 for i in range(81)),
    )
    """Row, column and box of each cell: the structure every Sudoku rule is written in."""
    group_attention: bool = True
    """Each cell attends to its 20 peers and itself only: one round of constraint propagation per layer."""
    min_blanks: int = 40
    max_blanks: int = 50
    max_mask_rate: float = 0.65
    """Training masks at most 65% of the cells: eval puzzles start from at most 50 / 81 = 62% blank."""

    def training_pair(self, rng: np.random.Generator) -> tuple[str, str]:
        """("", an 81-digit solution): a pool grid under a random symmetry."""
        pool = _training_pool()
        return "", transformed_grid(pool[rng.integers(len(pool))], rng)

    def eval_records(self, n: int, seed: int) -> list[dict]:
        """Fresh backtracking grids with min_blanks..max_blanks cells (uniform count, uniform cells) masked."""
        rng = np.random.default_rng(seed)
        records = []
        for i in range(check_count(n)):
            solution = random_grid(rng)
            blanks = int(rng.integers(self.min_blanks, self.max_blanks + 1))
            masked = blank_cells(solution, blanks, rng, self.mask_char)
            records.append({"id": f"sudoku-{seed}-{i:04d}", "masked": masked, "answer": solution, "blanks": blanks})
        return records
