"""Built-in testbeds: tasks with a generator, an eval-set maker and a metric, for training and tuning the reference MDM.

Two testbeds whose best mask schedules should differ (issue 3, section 4): "sudoku" (every token is hard) and
"arithmetic" (a short answer followed by easy end-of-text padding, the shape of LLaDA's code and math outputs).
The trainer sees only the `Testbed` interface below, so adding a testbed means adding one module and one line in
`_BUILDERS`. Pure Python/numpy: never imports torch, FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from mdmtune.errors import InvalidInput
from mdmtune.testbeds.arithmetic import ArithmeticTestbed
from mdmtune.testbeds.base import MASK_CHAR, PAD_CHAR, Testbed
from mdmtune.testbeds.sudoku import SudokuTestbed

_BUILDERS = {"sudoku": SudokuTestbed, "arithmetic": ArithmeticTestbed}

TESTBED_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def get_testbed(name: str) -> Testbed:
    """The built-in testbed called `name` (with its default sizes); InvalidInput(field="testbed") otherwise."""
    builder = _BUILDERS.get(name)
    if builder is None:
        raise InvalidInput("testbed", f"unknown testbed {name!r}; allowed: {', '.join(TESTBED_NAMES)}")
    return builder()


__all__ = [
    "MASK_CHAR",
    "PAD_CHAR",
    "TESTBED_NAMES",
    "ArithmeticTestbed",
    "SudokuTestbed",
    "Testbed",
    "get_testbed",
]
