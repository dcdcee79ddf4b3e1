"""One check per option kind, read from the option's declaration, raising `InvalidInput` naming the field.

Numbers may be numpy scalars (a sampler is often handed them) but never booleans: `True` is not 1 here.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

from mdmtune.errors import InvalidInput
from mdmtune.options.table import Option


def check_value(option: Option, value: object) -> None:
    """Raise InvalidInput(option.name, ...) unless `value` is allowed for `option`."""
    if value is None and option.optional:
        return
    _KIND_CHECKS[option.kind](option, value)
    if option.check is not None:
        option.check(value)


def _choice(option: Option, value: object) -> None:
    if value not in option.choices:
        raise InvalidInput(option.name, f"unknown value {value!r}; allowed: {', '.join(option.choices)}")


def _int(option: Option, value: object) -> None:
    name = option.name
    low, high = int(option.low or 0), None if option.high is None else int(option.high)
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise InvalidInput(name, f"must be an integer >= {low}, got {value!r}")
    if high is not None and value > high:
        raise InvalidInput(name, f"must be an integer between {low} and {high}, got {value!r}")


def _float(option: Option, value: object) -> None:
    low = "(" if option.low_open else "["
    high = ")" if option.high_open else "]"
    allowed = f"a finite number in {low}{option.low:g}, {option.high:g}{high}"
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise InvalidInput(option.name, f"must be {allowed}, got {value!r}")
    below = value <= option.low if option.low_open else value < option.low
    above = value >= option.high if option.high_open else value > option.high
    if below or above:
        raise InvalidInput(option.name, f"must be {allowed}, got {value!r}")


def _bool(option: Option, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidInput(option.name, f"must be true or false, got {value!r}")


def _str(option: Option, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidInput(option.name, f"must be a string, got {value!r}")
    if option.high is not None and not (option.low or 0) <= len(value) <= option.high:
        raise InvalidInput(option.name, f"must be a string of {option.low or 0:g} to {option.high:g} characters")


def _bounds(option: Option, value: object) -> None:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise InvalidInput(option.name, f"must be two numbers (low, high), got {value!r}")
    for end in value:
        _float(option, end)
    if value[0] >= value[1]:
        raise InvalidInput(option.name, f"low must be below high, got ({value[0]}, {value[1]})")


def _steps(option: Option, value: object) -> None:
    """One N, or several distinct ones (a steps sweep, or a frontier's budgets)."""
    steps = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not steps:
        raise InvalidInput(option.name, "give at least one step count")
    for n in steps:
        _int(option, n)
    if len(set(steps)) != len(steps):
        raise InvalidInput(option.name, f"repeated step counts in {list(steps)}")


_KIND_CHECKS = {
    "int": _int,
    "float": _float,
    "bool": _bool,
    "str": _str,
    "choice": _choice,
    "bounds": _bounds,
    "steps": _steps,
}
