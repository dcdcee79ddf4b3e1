"""Mask schedules in the paper's notation: time t in [0, 1], t = 0 all [MASK], t = 1 clean data.

The Beta family (docs/math.md): gamma_{a,b}(t) = I_t(a, b), the Beta(a, b) CDF, and
alpha_{a,b}(t) = sin^2(pi/2 * gamma_{a,b}(t)), the energy-optimal mask schedule for the weight gamma. Linear is
(0.5, 0.5) and cos2 is (1, 1) exactly (Prop. 3.7); sine sits outside the family. Everything here is vectorized over
many (a, b) at once because the tuner evaluates many schedules in one batch. Pure numpy/scipy: no web, no database.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betainc

from mdmtune.errors import InvalidInput

NAMED_AB: dict[str, tuple[float, float]] = {"linear": (0.5, 0.5), "cos2": (1.0, 1.0)}
"""Named schedules that are points of the Beta family, with their exact (a, b)."""

NAMES: tuple[str, ...] = ("linear", "cos2", "sine")

Floats = NDArray[np.float64]


def check_steps(steps: int, field: str = "steps") -> int:
    """N must be a whole number >= 1."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise InvalidInput(field, f"must be an integer >= 1, got {steps!r}")
    return int(steps)


def step_grid(steps: int) -> Floats:
    """The uniform grid t_k = k / N, k = 0..N (the schedule's shape, not the grid, sets per-step unmasking)."""
    n = check_steps(steps)
    return np.arange(n + 1, dtype=np.float64) / n


def check_shape_parameters(a: ArrayLike, b: ArrayLike) -> tuple[Floats, Floats]:
    """a and b as float arrays; both must be finite and > 0 (the Beta CDF is undefined elsewhere)."""
    for field, value in (("a", a), ("b", b)):
        array = np.asarray(value, dtype=np.float64)
        if array.ndim > 1:
            raise InvalidInput(field, f"must be a number or a 1-D array, got shape {array.shape}")
        if not np.all(np.isfinite(array)) or np.any(array <= 0):
            raise InvalidInput(field, f"must be finite and > 0, got {value!r}")
    a_arr, b_arr = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_arr.shape != b_arr.shape:
        a_arr, b_arr = np.broadcast_arrays(a_arr, b_arr)
    return a_arr, b_arr


def _check_times(t: ArrayLike) -> Floats:
    times = np.asarray(t, dtype=np.float64)
    if times.ndim != 1 or np.any(times < 0) or np.any(times > 1) or not np.all(np.isfinite(times)):
        raise InvalidInput("t", "must be a 1-D array of times in [0, 1]")
    return times


def beta_gamma(t: ArrayLike, a: ArrayLike, b: ArrayLike) -> Floats:
    """gamma_{a,b}(t) = I_t(a, b); shape (T,) for scalar a, b, else (S, T). Endpoints are exactly 0 and 1."""
    a_arr, b_arr = check_shape_parameters(a, b)
    times = _check_times(t)
    gamma = betainc(a_arr[..., None], b_arr[..., None], times)
    gamma = np.where(times == 0.0, 0.0, np.where(times == 1.0, 1.0, gamma))
    return np.clip(gamma, 0.0, 1.0)


def alpha_from_gamma(gamma: ArrayLike) -> Floats:
    """The optimal scheduling condition (Condition 3.4): alpha = sin^2(pi/2 * gamma)."""
    return np.sin(0.5 * math.pi * np.asarray(gamma, dtype=np.float64)) ** 2


def beta_alpha(t: ArrayLike, a: ArrayLike, b: ArrayLike) -> Floats:
    """alpha_{a,b}(t) = sin^2(pi/2 * I_t(a, b)); shape (T,) for scalar a, b, else (S, T)."""
    alpha = alpha_from_gamma(beta_gamma(t, a, b))
    times = _check_times(t)
    return np.where(times == 0.0, 0.0, np.where(times == 1.0, 1.0, alpha))


def _sine_alpha(t: Floats) -> Floats:
    return np.sin(0.5 * math.pi * t)


def _sine_gamma(t: Floats) -> Floats:
    """The weight for which sine would be optimal: gamma = (2/pi) arcsin(sqrt(alpha)) (Condition 3.4 inverted)."""
    return (2.0 / math.pi) * np.arcsin(np.sqrt(np.clip(_sine_alpha(t), 0.0, 1.0)))


@dataclass(frozen=True)
class Schedule:
    """One mask schedule: a Beta point (a, b), or a named curve outside the family (then a = b = None)."""

    name: str
    a: float | None = None
    b: float | None = None

    @property
    def in_beta_family(self) -> bool:
        return self.a is not None and self.b is not None

    def alpha(self, t: ArrayLike) -> Floats:
        """Probability that a token is unmasked by time t."""
        if self.in_beta_family:
            return beta_alpha(t, self.a, self.b)
        return _curve(self.name)[0](_check_times(t))

    def gamma(self, t: ArrayLike) -> Floats:
        """The interpolation weight for which this alpha is energy-optimal."""
        if self.in_beta_family:
            return beta_gamma(t, self.a, self.b)
        return _curve(self.name)[1](_check_times(t))

    def on_grid(self, steps: int) -> Floats:
        """alpha(t_k) on the N-step grid: what a sampling plan is built from."""
        return self.alpha(step_grid(steps))


def _curve(name: str) -> tuple[Callable[[Floats], Floats], Callable[[Floats], Floats]]:
    if name == "sine":
        return _sine_alpha, _sine_gamma
    raise InvalidInput("name", f"unknown schedule {name!r}; allowed: {', '.join(NAMES)}")


def beta(a: float, b: float) -> Schedule:
    """The Beta-family schedule at (a, b), named like "beta(0.8,0.8)"."""
    a_arr, b_arr = check_shape_parameters(a, b)
    if a_arr.ndim or b_arr.ndim:
        raise InvalidInput("a", "a single schedule takes scalar a and b")
    return Schedule(name=f"beta({float(a_arr):g},{float(b_arr):g})", a=float(a_arr), b=float(b_arr))


def named(name: str) -> Schedule:
    """linear, cos2 (both exact Beta points) or sine."""
    if name in NAMED_AB:
        a, b = NAMED_AB[name]
        return Schedule(name=name, a=a, b=b)
    _curve(name)
    return Schedule(name=name)


def alpha_grids(schedules: list[Schedule], steps: int) -> Floats:
    """alpha on the N-step grid for many schedules at once, shape (S, N+1); one betainc call for the Beta points."""
    grid = step_grid(steps)
    out = np.empty((len(schedules), grid.size))
    family = [i for i, s in enumerate(schedules) if s.in_beta_family]
    if family:
        a = np.array([schedules[i].a for i in family])
        b = np.array([schedules[i].b for i in family])
        out[family] = beta_alpha(grid, a, b)
    for i, schedule in enumerate(schedules):
        if not schedule.in_beta_family:
            out[i] = schedule.alpha(grid)
    return out
