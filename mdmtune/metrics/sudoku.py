"""The sudoku metric: any valid completion of the record's grid counts; the rules live in mdmtune.testbeds.sudoku.

Pure Python: never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from mdmtune.data.evalsets import EvalRecord, where
from mdmtune.errors import InvalidInput
from mdmtune.testbeds.sudoku import givens, grid_digits, solves


def check_sudoku(record: EvalRecord) -> None:
    if record.kind != "infill":
        raise InvalidInput("metric", f'{where(record)}: sudoku scores infill records (a "masked" grid)')
    try:
        givens(record.masked or "")
    except InvalidInput as error:
        raise InvalidInput("masked", f"{where(record)}: {error.message}") from None


def sudoku(output: str, record: EvalRecord) -> float:
    """1 when the output's digits form a valid 9x9 grid consistent with the givens of the record's masked grid.

    The output may be the whole grid (81 digits) or just the filled-in blanks in reading order; white space and
    separators are ignored. The answer field is not used: any valid completion counts, unique or not.
    """
    check_sudoku(record)
    cells = givens(record.masked or "")
    digits = grid_digits(output)
    blanks = [i for i, given in enumerate(cells) if given is None]
    if len(digits) == len(blanks) != 81:
        filled = list(cells)
        for i, digit in zip(blanks, digits, strict=True):
            filled[i] = digit
        digits = "".join(d or "" for d in filled)
    return float(solves(digits, record.masked or ""))
