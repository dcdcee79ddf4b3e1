"""Claims of docs/math.md "Time and schedules", one test each."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mdmtune.core.schedules import (
    alpha_grids,
    beta,
    beta_alpha,
    beta_gamma,
    named,
    step_grid,
)
from mdmtune.errors import InvalidInput

DENSE = np.linspace(0.0, 1.0, 20001)
shape = st.floats(min_value=0.05, max_value=5.0)


def test_linear_is_beta_half_half_to_1e12():
    assert np.max(np.abs(beta_alpha(DENSE, 0.5, 0.5) - DENSE)) < 1e-12


def test_cos2_is_beta_one_one_to_1e12():
    assert np.max(np.abs(beta_alpha(DENSE, 1.0, 1.0) - np.sin(0.5 * math.pi * DENSE) ** 2)) < 1e-12


def test_named_linear_and_cos2_are_those_beta_points():
    assert (named("linear").a, named("linear").b) == (0.5, 0.5)
    assert (named("cos2").a, named("cos2").b) == (1.0, 1.0)


def test_sine_is_outside_the_family_and_is_sin():
    sine = named("sine")
    assert not sine.in_beta_family
    assert np.allclose(sine.alpha(DENSE), np.sin(0.5 * math.pi * DENSE), atol=1e-15)


def test_sine_gamma_satisfies_the_optimality_condition():
    sine = named("sine")
    assert np.allclose(np.sin(0.5 * math.pi * sine.gamma(DENSE)) ** 2, sine.alpha(DENSE), atol=1e-12)


def test_gamma_is_the_beta_cdf():
    for a, b in [(0.3, 2.0), (1.0, 0.2), (2.5, 2.5)]:
        assert np.allclose(beta_gamma(DENSE, a, b), stats.beta.cdf(DENSE, a, b), atol=1e-12)


@given(a=shape, b=shape)
@settings(max_examples=60, deadline=None)
def test_endpoints_are_exact_and_alpha_increases(a, b):
    alpha = beta_alpha(DENSE, a, b)
    assert alpha[0] == 0.0 and alpha[-1] == 1.0
    assert np.all(np.diff(alpha) >= 0)


def test_step_grid_is_uniform_k_over_n():
    assert np.array_equal(step_grid(4), np.array([0.0, 0.25, 0.5, 0.75, 1.0]))


def test_vectorized_equals_one_at_a_time():
    a = np.array([0.1, 0.5, 1.0, 3.0])
    b = np.array([0.2, 0.5, 1.0, 0.7])
    t = step_grid(16)
    stacked = beta_alpha(t, a, b)
    assert stacked.shape == (4, 17)
    for row, (ai, bi) in enumerate(zip(a, b, strict=True)):
        assert np.array_equal(stacked[row], beta_alpha(t, ai, bi))


def test_alpha_grids_mixes_family_points_and_named_curves():
    schedules = [beta(0.8, 0.8), named("sine"), named("linear")]
    grids = alpha_grids(schedules, 8)
    for row, schedule in enumerate(schedules):
        assert np.array_equal(grids[row], schedule.on_grid(8))


@pytest.mark.parametrize(
    ("a", "b", "field"),
    [(0.0, 1.0, "a"), (-1.0, 1.0, "a"), (math.nan, 1.0, "a"), (1.0, math.inf, "b"), (1.0, 0.0, "b")],
)
def test_bad_shape_parameters_name_the_field(a, b, field):
    with pytest.raises(InvalidInput) as error:
        beta(a, b)
    assert error.value.field == field


@pytest.mark.parametrize("steps", [0, -3, 2.5, True])
def test_bad_step_counts_are_refused(steps):
    with pytest.raises(InvalidInput) as error:
        step_grid(steps)
    assert error.value.field == "steps"


def test_unknown_name_lists_the_allowed_names():
    with pytest.raises(InvalidInput, match="linear, cos2, sine"):
        named("cosine")
