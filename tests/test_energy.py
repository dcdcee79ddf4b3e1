"""Claims of docs/math.md "Energies", one test each.

Expected values are computed independently of mdmtune.core.energy: from the defining integral with mpmath's tanh-sinh
quadrature, from Beta-function identities with scipy.special.beta, or from closed forms derived by hand in comments.
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import beta as beta_function

from mdmtune.core.energy import (
    beta_path_point,
    continuous_energy,
    discrete_energy,
    discrete_energy_of_alpha,
    discrete_geodesic_energy,
    diverges,
    mdm_energy,
    mdm_rate_matrix,
    mdm_token_path,
    schedule_discrete_energy,
    schedule_energy,
)
from mdmtune.core.schedules import beta_alpha, beta_gamma, named, step_grid
from mdmtune.errors import InvalidInput

PI2 = math.pi**2  # docs/math.md: the minimum over all schedules
WEIGHTS = [(1.0, 1.0), (2.0, 2.0), (0.8, 0.3), (0.5, 3.0), (3.5, 0.7)]
shape = st.floats(min_value=0.05, max_value=5.0)
MDM_KINDS = ("kinetic", "conditional_kinetic", "geodesic")


def split_integral(integrand, m: int) -> float:
    """integral_0^1 integrand(t, u) dt with u = 1 - t, by mpmath's tanh-sinh in the variable s of t = s^m on the left
    half and of u = s^m on the right half: endpoint powers t^p become s^(m(p+1)-1), smooth for large m, and near
    t = 1 the integrand gets u itself rather than 1 - t with its digits gone."""
    half = mp.mpf(0.5) ** (mp.mpf(1) / m)
    with mp.workdps(20):
        left = mp.quad(lambda s: integrand(s**m, 1 - s**m) * m * s ** (m - 1), [0, half])
        right = mp.quad(lambda s: integrand(1 - s**m, s**m) * m * s ** (m - 1), [0, half])
        return float(left + right)


def energy_by_definition(a: float, b: float, weight_a: float, weight_b: float) -> float:
    """integral alpha'^2 / (gamma_w' alpha (1 - alpha)) dt with mpmath, straight from docs/math.md's first formula.

    gamma = I_t(a, b) where t <= 1/2 and 1 - gamma = I_u(b, a) beyond, so that 1 - alpha keeps its digits.
    """
    a, b, wa, wb = (mp.mpf(x) for x in (a, b, weight_a, weight_b))

    def integrand(t, u):
        if t <= 0.5:
            gamma = mp.betainc(a, b, 0, t, regularized=True)
            gamma_bar = 1 - gamma
        else:
            gamma_bar = mp.betainc(b, a, 0, u, regularized=True)
            gamma = 1 - gamma_bar
        f = t ** (a - 1) * u ** (b - 1) / mp.beta(a, b)
        f_w = t ** (wa - 1) * u ** (wb - 1) / mp.beta(wa, wb)
        alpha, not_alpha = mp.sin(mp.pi / 2 * gamma) ** 2, mp.sin(mp.pi / 2 * gamma_bar) ** 2
        alpha_prime = mp.pi / 2 * mp.sin(mp.pi * min(gamma, gamma_bar)) * f
        return alpha_prime**2 / (f_w * alpha * not_alpha)

    power = min(2 * a - wa - 1, 2 * b - wb - 1)
    return split_integral(integrand, max(2, math.ceil(2 / float(power + 1))))


@pytest.mark.parametrize(("weight_a", "weight_b"), WEIGHTS)
def test_minimum_pi2_is_attained_at_alpha_sin2_of_the_weight(weight_a, weight_b):
    assert continuous_energy(weight_a, weight_b, weight_a, weight_b) == pytest.approx(PI2, rel=1e-14)
    for da, db in [(1.05, 1.0), (0.95, 1.0), (1.0, 1.05), (1.0, 0.95), (1.1, 0.9)]:
        assert continuous_energy(weight_a * da, weight_b * db, weight_a, weight_b) > PI2


@pytest.mark.parametrize(("weight_a", "weight_b"), WEIGHTS)
def test_discrete_energy_at_the_weight_approaches_pi2_from_below(weight_a, weight_b):
    values = [discrete_energy(weight_a, weight_b, n, weight_a, weight_b) for n in (4, 16, 64, 256, 1024)]
    assert all(v <= PI2 for v in values)
    assert values == sorted(values)
    # the deficit is ~ pi^4/48 sum_k dgamma_w^3: slowest when the weight puts a big first or last step, as (0.8, 0.3)
    assert PI2 - values[-1] < 1e-3 * PI2


def test_discrete_energy_of_cos2_under_uniform_weight_is_16_n2_sin2():
    # theta steps pi/(2N), weight steps 1/N: E_N = 4 N * 4 sin^2(pi/(4N)) / (1/N)
    for n in (1, 2, 3, 8, 100):
        assert discrete_energy(1.0, 1.0, n) == pytest.approx(16 * n**2 * math.sin(math.pi / (4 * n)) ** 2, rel=1e-13)


@given(a=shape, b=shape, weight_a=shape, weight_b=shape)
@settings(max_examples=300, deadline=None)
def test_no_schedule_goes_below_pi2(a, b, weight_a, weight_b):
    assert continuous_energy(a, b, weight_a, weight_b) >= PI2 * (1 - 1e-12)


@given(a=shape, b=shape, weight_a=shape, weight_b=shape, steps=st.integers(1, 200))
@settings(max_examples=200, deadline=None)
def test_discrete_energy_never_exceeds_the_continuous_one(a, b, weight_a, weight_b, steps):
    # per step: chord <= arc, and Cauchy-Schwarz on [t_k, t_k+1] gives 4 arc^2 / dgamma_w <= int 4 theta'^2/gamma_w'
    discrete = discrete_energy(a, b, steps, weight_a, weight_b)
    assert discrete <= continuous_energy(a, b, weight_a, weight_b) * (1 + 1e-9)
    assert discrete > 0


@pytest.mark.parametrize(
    ("a", "b", "weight_a", "weight_b"),
    [(0.8, 0.8, 1.0, 1.0), (2.0, 3.0, 1.0, 1.0), (1.0, 0.6, 0.8, 0.3), (3.0, 1.5, 2.0, 2.0), (0.9, 0.3, 0.5, 0.2)],
)
def test_discrete_energy_converges_to_the_continuous_one(a, b, weight_a, weight_b):
    continuous = continuous_energy(a, b, weight_a, weight_b)
    errors = [abs(discrete_energy(a, b, n, weight_a, weight_b) - continuous) for n in (64, 256, 1024)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.01 * continuous


def test_sine_discrete_energy_converges_to_its_continuous_energy():
    sine = named("sine")
    continuous = schedule_energy(sine, 0.5, 1.0)
    errors = [abs(schedule_discrete_energy(sine, n, 0.5, 1.0) - continuous) for n in (64, 256, 1024)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-3 * continuous


def test_linear_under_the_uniform_weight_is_infinite_and_its_discrete_energy_grows_without_bound():
    assert continuous_energy(0.5, 0.5) == math.inf
    assert schedule_energy(named("linear")) == math.inf
    values = [discrete_energy(0.5, 0.5, n) for n in (16, 256, 4096)]
    # the first and last steps each cost ~ (2/pi) log N more per factor of N: the harmonic-like divergence
    assert values[0] < values[1] < values[2]
    assert values[2] - values[1] > 2.0


@pytest.mark.parametrize(
    ("a", "b", "weight_a", "weight_b"),
    [(0.5, 0.5, 1.0, 1.0), (1.0, 2.0, 2.0, 1.0), (2.0, 0.4, 1.0, 0.8), (0.05, 5.0, 5.0, 5.0), (1.0, 1.0, 2.0, 2.0)],
)
def test_divergence_is_decided_at_the_endpoints_and_reported_as_inf(a, b, weight_a, weight_b):
    # 2a <= a_w or 2b <= b_w: the integrand behaves as t^(2a - a_w - 1), not integrable at 0 (same at 1)
    assert diverges(a, b, weight_a, weight_b)
    assert continuous_energy(a, b, weight_a, weight_b) == math.inf
    assert all(mdm_energy(kind, a, b, weight_a, weight_b) == math.inf for kind in MDM_KINDS)


def test_just_inside_the_boundary_is_finite_and_large():
    near = continuous_energy(0.5 + 1e-6, 0.5 + 1e-6)
    assert math.isfinite(near) and near > 1e5


def test_vectorized_inputs_mixing_finite_and_divergent_points_give_inf_never_nan():
    a = np.array([0.5, 1.0, 0.05, 5.0, 0.51])
    b = np.array([0.5, 1.0, 5.0, 0.05, 0.51])
    values = continuous_energy(a, b)
    assert not np.any(np.isnan(values))
    assert np.isinf(values).tolist() == [True, False, True, True, False]


def test_sine_is_infinite_under_the_uniform_weight_and_finite_under_a_w_below_1():
    sine = named("sine")
    assert schedule_energy(sine, 1.0, 1.0) == math.inf
    assert schedule_energy(sine, 0.5, 2.0) == math.inf
    assert math.isfinite(schedule_energy(sine, 0.5, 1.9))


def test_sine_energy_equals_its_defining_integral():
    # alpha = sin(pi t / 2): alpha'^2 / (alpha (1 - alpha)) = pi^2/4 (1 + s)/s with s = alpha, over the weight's pdf
    for weight_a, weight_b in [(0.5, 1.0), (0.3, 1.5), (0.9, 0.4)]:

        def integrand(t, u, wa=weight_a, wb=weight_b):
            s = mp.sin(mp.pi * t / 2)
            pdf = t ** (wa - 1) * u ** (wb - 1) / mp.beta(wa, wb)
            return mp.pi**2 / 4 * (1 + s) / s / pdf

        expected = split_integral(integrand, 12)
        assert schedule_energy(named("sine"), weight_a, weight_b) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("a", "b", "weight_a", "weight_b"),
    [(0.8, 0.6, 1.0, 1.0), (2.0, 0.3, 3.0, 0.5), (0.3, 0.9, 0.5, 1.5), (3.0, 2.0, 1.0, 1.0), (1.0, 0.2, 0.8, 0.3)],
)
def test_continuous_energy_equals_its_defining_integral(a, b, weight_a, weight_b):
    expected = energy_by_definition(a, b, weight_a, weight_b)
    assert continuous_energy(a, b, weight_a, weight_b) == pytest.approx(expected, rel=1e-8)


@given(a=st.floats(0.55, 5.0), b=st.floats(0.55, 5.0))
@settings(max_examples=100, deadline=None)
def test_uniform_weight_closed_form_is_beta_2a_minus_1_over_beta_squared(a, b):
    expected = PI2 * beta_function(2 * a - 1, 2 * b - 1) / beta_function(a, b) ** 2
    assert continuous_energy(a, b) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(
    ("a", "b", "weight_a", "weight_b", "data"),
    [
        (0.8, 0.6, 1.0, 1.0, [0.5, 0.5]),
        (2.0, 0.3, 3.0, 0.5, [0.2, 0.3, 0.5]),
        (0.3, 0.9, 0.5, 1.5, [0.9, 0.1]),
        (1.0, 1.0, 1.0, 1.0, [1.0]),
        (0.05, 5.0, 0.06, 1.0, [0.1, 0.2, 0.3, 0.4]),
        (1.0, 0.2, 0.8, 0.3, [0.25, 0.25, 0.5]),
    ],
)
def test_kinetic_equals_conditional_kinetic_equals_geodesic_for_one_token(a, b, weight_a, weight_b, data):
    reference = continuous_energy(a, b, weight_a, weight_b)
    values = [mdm_energy(kind, a, b, weight_a, weight_b, data) for kind in MDM_KINDS]
    assert values == pytest.approx([reference] * 3, rel=1e-7)


def test_the_rate_matrix_generates_the_token_path():
    # Kolmogorov forward equation dp/dt = R p, checked against a central difference of the path itself
    data = np.array([0.1, 0.6, 0.3])
    for a, b, t in [(0.8, 0.6, 0.3), (2.0, 0.3, 0.7), (1.0, 1.0, 0.5)]:
        alpha, masked, alpha_prime = beta_path_point(t, a, b)
        h = 1e-6
        forward = mdm_token_path(*beta_path_point(t + h, a, b)[:2], data)
        backward = mdm_token_path(*beta_path_point(t - h, a, b)[:2], data)
        rates = mdm_rate_matrix(masked, alpha_prime, data)
        assert np.allclose(rates.sum(axis=0), 0.0, atol=1e-12)
        assert np.allclose(rates @ mdm_token_path(alpha, masked, data), (forward - backward) / (2 * h), rtol=1e-6)


@pytest.mark.parametrize(("a", "b", "weight_a", "weight_b"), [(0.8, 0.6, 1.0, 1.0), (2.0, 0.3, 3.0, 0.5)])
def test_discrete_geodesic_energy_of_the_token_path_equals_the_chord_form(a, b, weight_a, weight_b):
    for steps in (3, 64):
        chord = discrete_energy(a, b, steps, weight_a, weight_b)
        path = discrete_geodesic_energy(a, b, steps, weight_a, weight_b, data=[0.2, 0.7, 0.1])
        assert path == pytest.approx(chord, rel=1e-10)


def test_vectorized_energies_equal_the_scalar_ones():
    rng = np.random.default_rng(7)
    a = np.exp(rng.uniform(math.log(0.05), math.log(5.0), 50))
    b = np.exp(rng.uniform(math.log(0.05), math.log(5.0), 50))
    continuous = continuous_energy(a, b, 0.8, 0.3)
    discrete = discrete_energy(a, b, 32, 0.8, 0.3)
    assert continuous.shape == discrete.shape == (50,)
    for i in range(50):
        assert continuous[i] == continuous_energy(float(a[i]), float(b[i]), 0.8, 0.3)
        assert discrete[i] == pytest.approx(discrete_energy(float(a[i]), float(b[i]), 32, 0.8, 0.3), rel=1e-14)


@pytest.mark.parametrize(("a", "b", "weight_a", "weight_b"), [(0.8, 0.6, 1.0, 1.0), (2.0, 3.0, 0.8, 0.3)])
def test_alpha_grid_route_agrees_with_the_beta_route(a, b, weight_a, weight_b):
    grid = step_grid(64)
    from_grid = discrete_energy_of_alpha(beta_alpha(grid, a, b), beta_gamma(grid, weight_a, weight_b))
    assert from_grid == pytest.approx(discrete_energy(a, b, 64, weight_a, weight_b), rel=1e-9)
    stacked = discrete_energy_of_alpha(np.stack([beta_alpha(grid, a, b)] * 2), beta_gamma(grid, weight_a, weight_b))
    assert stacked.tolist() == [from_grid, from_grid]


def test_a_step_that_moves_in_zero_weight_time_costs_inf():
    assert discrete_energy_of_alpha([0.0, 0.5, 1.0], [0.0, 1.0, 1.0]) == math.inf
    assert discrete_energy_of_alpha([0.0, 0.0, 1.0], [0.0, 0.0, 1.0]) == pytest.approx(16 * math.sin(math.pi / 4) ** 2)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: continuous_energy(0.0, 1.0), "a"),
        (lambda: continuous_energy(1.0, float("nan")), "b"),
        (lambda: continuous_energy(1.0, 1.0, -1.0, 1.0), "weight_a"),
        (lambda: discrete_energy(1.0, 1.0, 4, 1.0, float("inf")), "weight_b"),
        (lambda: discrete_energy(1.0, 1.0, 0), "steps"),
        (lambda: discrete_energy_of_alpha([0.0, 1.0], [0.0, 0.5, 1.0]), "gamma_w_grid"),
        (lambda: mdm_energy("potential", 1.0, 1.0), "kind"),
        (lambda: mdm_energy("kinetic", 1.0, 1.0, data=[0.5, 0.6]), "data"),
    ],
)
def test_bad_input_names_the_field(call, field):
    with pytest.raises(InvalidInput) as error:
        call()
    assert error.value.field == field
