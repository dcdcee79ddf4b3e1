"""How numbers read in text meant for people (CLI tables, `print(result)`): one rounding everywhere.

Scores (means of per-record scores in [0, 1]) and their intervals: 3 decimals. Differences of scores: 3 decimals
with a sign. Energies (pi^2 and up): 4 decimals. Schedule parameters (a, b, tau, gamma): 4 significant digits.
JSON output never goes through here: it keeps every digit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

SCORE_DECIMALS = 3
ENERGY_DECIMALS = 4
PARAMETER_DIGITS = 4


def _special(value: float | None) -> str | None:
    if value is None:
        return "-"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return None


def score(value: float | None) -> str:
    """0.23333333333333334 -> '0.233'."""
    return _special(value) or f"{value:.{SCORE_DECIMALS}f}"


def diff(value: float | None) -> str:
    """A difference of scores, signed: 0.0833 -> '+0.083'."""
    return _special(value) or f"{value:+.{SCORE_DECIMALS}f}"


def interval(ci: Sequence[float] | None, signed: bool = False) -> str:
    """[low, high] with the scores' rounding ('' when there is none); `signed` for intervals of differences."""
    if not ci:
        return ""
    one = diff if signed else score
    return f"[{one(ci[0])}, {one(ci[1])}]"


def energy(value: float | None) -> str:
    """An energy E or E_N: 9.869604401089358 -> '9.8696'."""
    return _special(value) or f"{value:.{ENERGY_DECIMALS}f}"


def parameter(value: float | None) -> str:
    """A schedule or decoder parameter: 0.34751234 -> '0.3475', 1.0 -> '1'."""
    return _special(value) or f"{value:.{PARAMETER_DIGITS}g}"
