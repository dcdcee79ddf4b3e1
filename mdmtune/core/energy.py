"""The energies a mask schedule pays (docs/math.md "Energies"; the paper's Definitions 2.1-2.3 and Appendix D.5).

Single-token normalization, used everywhere in mdmtune:
    E(alpha; gamma_w) = integral_0^1 alpha'(t)^2 / (gamma_w'(t) alpha(t) (1 - alpha(t))) dt
                      = integral_0^1 4 theta'(t)^2 / gamma_w'(t) dt,
with theta = arcsin(sqrt(alpha)). Its minimum over all alpha is pi^2, at alpha = sin^2(pi/2 gamma_w).

Three parts:
- continuous energy of a Beta point under a Beta weight, in closed form (exact, vectorized, inf where it diverges);
- the N-step discrete (chord) energy E_N, vectorized over many (a, b): what the energy search minimizes;
- for a single token (n = 1), the kinetic, conditional kinetic and geodesic energies computed from the MDM's
  probability path and rate matrix, so that a test can show they coincide with the form above.
Pure numpy/scipy: no web, no database.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import betaln

from mdmtune.core.schedules import Schedule, beta_gamma, check_shape_parameters, step_grid
from mdmtune.errors import InvalidInput

Floats = NDArray[np.float64]

MINIMUM = math.pi**2
"""The smallest continuous energy any schedule can have, for every weight (Cauchy-Schwarz)."""


def check_weight(weight_a: ArrayLike, weight_b: ArrayLike) -> tuple[Floats, Floats]:
    """The weight gamma_w is the Beta(a_w, b_w) CDF, so its parameters obey the same rule as (a, b)."""
    try:
        return check_shape_parameters(weight_a, weight_b)
    except InvalidInput as error:
        raise InvalidInput(f"weight_{error.field}", error.message) from None


def _scalar_or_array(values: Floats) -> float | Floats:
    return float(values) if values.ndim == 0 else values


# --- continuous energy --------------------------------------------------------------------------------------------


def diverges(a: ArrayLike, b: ArrayLike, weight_a: ArrayLike = 1.0, weight_b: ArrayLike = 1.0) -> bool | NDArray:
    """True where E(alpha_{a,b}; gamma_w) = +inf, decided at the endpoints, not by integrating.

    With theta = pi/2 I_t(a, b) the integrand is pi^2 f_{a,b}^2 / f_w, f the Beta pdf. Near t = 0 it behaves as
    t^(2(a-1) - (a_w-1)) = t^(2a - a_w - 1), integrable iff 2a - a_w - 1 > -1, i.e. iff 2a > a_w; near t = 1 the same
    with b. So it diverges iff 2a <= a_w or 2b <= b_w (linear (0.5, 0.5) under the uniform weight (1, 1): 1 <= 1).
    """
    a_arr, b_arr = check_shape_parameters(a, b)
    wa, wb = check_weight(weight_a, weight_b)
    result = (2.0 * a_arr <= wa) | (2.0 * b_arr <= wb)
    return bool(result) if result.ndim == 0 else result


def continuous_energy(
    a: ArrayLike, b: ArrayLike, weight_a: ArrayLike = 1.0, weight_b: ArrayLike = 1.0
) -> float | Floats:
    """E(alpha_{a,b}; gamma_w) = pi^2 integral f_{a,b}^2 / f_w dt; float for scalar (a, b), else an array.

    f_{a,b}^2 / f_w = B(a_w, b_w) / B(a, b)^2 * t^(2a - a_w - 1) (1 - t)^(2b - b_w - 1), so the integral is a Beta
    function: E = pi^2 B(a_w, b_w) B(2a - a_w, 2b - b_w) / B(a, b)^2 where it converges (see `diverges`), else +inf.
    Closed form instead of quadrature: exact (pi^2 to the last bit at (a, b) = (a_w, b_w)), and it evaluates a
    whole (a, b) grid at once. Computed with log-Beta so that large or small parameters neither overflow nor NaN.
    """
    a_arr, b_arr = check_shape_parameters(a, b)
    wa, wb = check_weight(weight_a, weight_b)
    infinite = (2.0 * a_arr <= wa) | (2.0 * b_arr <= wb)
    left = np.where(infinite, 1.0, 2.0 * a_arr - wa)
    right = np.where(infinite, 1.0, 2.0 * b_arr - wb)
    log_ratio = betaln(wa, wb) + betaln(left, right) - 2.0 * betaln(a_arr, b_arr)
    with np.errstate(over="ignore"):
        energy = MINIMUM * np.exp(log_ratio)
    return _scalar_or_array(np.where(infinite, np.inf, energy))


def schedule_energy(schedule: Schedule, weight_a: float = 1.0, weight_b: float = 1.0) -> float:
    """Continuous energy of any named or Beta schedule: closed form for Beta points, quadrature for sine.

    Sine, alpha = sin(pi t / 2) with s = alpha: alpha'^2 / (alpha (1 - alpha)) = pi^2/4 (1 + s) / s, which behaves as
    1/t at 0 and tends to pi^2/2 at 1. Divided by f_w ~ t^(a_w - 1) (1 - t)^(b_w - 1) the integrand goes as t^(-a_w)
    and (1 - t)^(1 - b_w): finite iff a_w < 1 and b_w < 2. Those powers are handed to QUADPACK's algebraic-weight
    rule (QAWS), which integrates them exactly, leaving a smooth remainder.
    """
    wa, wb = (float(x) for x in check_weight(weight_a, weight_b))
    if schedule.in_beta_family:
        return float(continuous_energy(schedule.a, schedule.b, wa, wb))
    if schedule.name != "sine":
        raise InvalidInput("name", f"no energy rule for schedule {schedule.name!r}")
    if wa >= 1.0 or wb >= 2.0:
        return math.inf
    from scipy import integrate  # imported here, not above: scipy.integrate and scipy.stats are most of a CLI start-up

    log_beta_w = float(betaln(wa, wb))

    def smooth_part(t: float) -> float:
        s = math.sin(0.5 * math.pi * t)
        t_over_s = 2.0 / math.pi if t == 0.0 else t / s
        return 0.25 * MINIMUM * math.exp(log_beta_w) * (1.0 + s) * t_over_s

    value, _ = integrate.quad(smooth_part, 0.0, 1.0, weight="alg", wvar=(-wa, 1.0 - wb), epsabs=0.0, epsrel=1e-12)
    return float(value)


# --- discrete (chord) energy --------------------------------------------------------------------------------------


def cdf_increments(t: ArrayLike, a: ArrayLike, b: ArrayLike) -> Floats:
    """I_{t_{k+1}}(a, b) - I_{t_k}(a, b) for an increasing grid t, accurate at both ends.

    Near t = 1 the CDF is 1 - tiny and a plain difference would cancel to nothing (for b = 5 and N = 1024 the last
    increment is ~1e-15); there the complement I_{1-t}(b, a) = 1 - I_t(a, b) is differenced instead.
    Shape (N,) for scalar a, b, else (S, N).
    """
    times = np.asarray(t, dtype=np.float64)
    lower = beta_gamma(times, a, b)
    upper = beta_gamma(1.0 - times, b, a)
    from_lower = np.diff(lower, axis=-1)
    from_upper = -np.diff(upper, axis=-1)
    across = (1.0 - upper[..., 1:]) - lower[..., :-1]
    start, end = times[:-1], times[1:]
    return np.where(end <= 0.5, from_lower, np.where(start >= 0.5, from_upper, across))


def _chord_energy(theta_steps: Floats, gamma_steps: Floats) -> float | Floats:
    """4 * sum 2 (1 - cos dtheta) / dgamma, written as 16 sin^2(dtheta / 2) / dgamma (no cancellation for small steps).

    A step with dtheta = 0 costs nothing; a step that moves (dtheta > 0) in zero weight-time costs +inf.
    """
    chord_squared = 4.0 * np.sin(0.5 * theta_steps) ** 2
    moving = theta_steps != 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(moving, chord_squared / np.where(moving, gamma_steps, 1.0), 0.0)
    terms = np.where(moving & (gamma_steps <= 0.0), np.inf, terms)
    return _scalar_or_array(4.0 * terms.sum(axis=-1))


def discrete_energy(
    a: ArrayLike, b: ArrayLike, steps: int, weight_a: float = 1.0, weight_b: float = 1.0
) -> float | Floats:
    """E_N(alpha_{a,b}; gamma_w) on the N-step grid (Appendix D.5, chord form); float for scalar (a, b), else (S,).

    For a Beta point theta_k = arcsin(sqrt(alpha_k)) = pi/2 I_{t_k}(a, b) exactly, so the theta steps are taken from
    the CDF increments directly: going through alpha and arcsin(sqrt(.)) would lose half the digits near alpha = 1.
    E_N <= E, approaching it as N grows; at (a, b) = w with uniform weight E_N = 16 N^2 sin^2(pi / (4N)).
    """
    grid = step_grid(steps)
    a_arr, b_arr = check_shape_parameters(a, b)
    wa, wb = check_weight(weight_a, weight_b)
    if wa.ndim or wb.ndim:
        raise InvalidInput("weight_a", "the weight must be one (a_w, b_w) pair")
    theta_steps = 0.5 * math.pi * cdf_increments(grid, a_arr, b_arr)
    return _chord_energy(theta_steps, cdf_increments(grid, float(wa), float(wb)))


def discrete_energy_of_alpha(alpha_grid: ArrayLike, gamma_w_grid: ArrayLike) -> float | Floats:
    """E_N for any schedule given on a grid: alpha (N+1,) or (S, N+1), and the weight gamma_w on the same grid (N+1,).

    Works for sine and for anything outside the Beta family. theta = atan2(sqrt(alpha), sqrt(1 - alpha)) is
    arcsin(sqrt(alpha)) without arcsin's blow-up of rounding at alpha = 1.
    """
    alpha = np.asarray(alpha_grid, dtype=np.float64)
    gamma = np.asarray(gamma_w_grid, dtype=np.float64)
    if alpha.ndim not in (1, 2) or alpha.shape[-1] < 2 or not np.all(np.isfinite(alpha)):
        raise InvalidInput("alpha_grid", "must be finite with shape (N+1,) or (S, N+1), N >= 1")
    if gamma.ndim != 1 or gamma.shape[0] != alpha.shape[-1] or not np.all(np.isfinite(gamma)):
        raise InvalidInput("gamma_w_grid", f"must be finite with shape ({alpha.shape[-1]},) like alpha's last axis")
    if np.any(np.diff(gamma) < 0):
        raise InvalidInput("gamma_w_grid", "must be non-decreasing")
    alpha = np.clip(alpha, 0.0, 1.0)
    theta = np.arctan2(np.sqrt(alpha), np.sqrt(1.0 - alpha))
    return _chord_energy(np.abs(np.diff(theta, axis=-1)), np.diff(gamma))


def schedule_discrete_energy(schedule: Schedule, steps: int, weight_a: float = 1.0, weight_b: float = 1.0) -> float:
    """E_N of a named or Beta schedule: the accurate Beta route where it applies, the alpha-grid route for sine."""
    if schedule.in_beta_family:
        return float(discrete_energy(schedule.a, schedule.b, steps, weight_a, weight_b))
    wa, wb = (float(x) for x in check_weight(weight_a, weight_b))
    grid = step_grid(steps)
    theta = np.arctan2(np.sqrt(schedule.alpha(grid)), np.sqrt(1.0 - schedule.alpha(grid)))
    return float(_chord_energy(np.abs(np.diff(theta)), cdf_increments(grid, wa, wb)))


# --- the MDM's own energies for one token (n = 1) ------------------------------------------------------------------
#
# One token, vocabulary {1..V} with data distribution q, plus the state 0 = [MASK]. The MDM's forward path is
#     p_t(0) = 1 - alpha(t),  p_t(v) = alpha(t) q(v),
# generated (Kolmogorov forward equation dp/dt = R_t p) by the MDM's rate matrix R_t[y, x] (rate of x -> y):
#     R_t[v, 0] = alpha'(t) / (1 - alpha(t)) * q(v),  R_t[0, 0] = -alpha'/(1 - alpha),  every other entry 0
# (a [MASK] is replaced by a token drawn from the denoiser, here exactly q; a token is never re-masked).
# Conditioned on the clean token x0 = v the path is p_t(.|v) = (1 - alpha) e_0 + alpha e_v, with rate alpha'/(1 - alpha)
# from 0 to v only. Time is measured in the weight's clock gamma_w, hence the common factor 1 / gamma_w'(t).
# The three energies, as implemented (the paper's Definitions 2.1-2.3 state them for n tokens; docs/math.md fixes this
# single-token normalization and forbids inventing the n-token constants):
#   kinetic:             integral 1/gamma_w' * sum_{x != y} j_t(y, x)^2 / (p_t(x) p_t(y)) dt,
#                        with the probability flux j(y, x) = R[y, x] p(x) (the Fisher-Rao-weighted kinetic
#                        energy of discrete flow matching);
#   conditional kinetic: the same with the conditional path and rates, averaged over x0 ~ q;
#   geodesic:            integral 4/gamma_w' * |d/dt sqrt(p_t)|^2 dt
#                        = integral 1/gamma_w' * sum_x (dp_t(x)/dt)^2 / p_t(x) dt, the squared speed on the sphere
#                        of sqrt-probabilities, whose great circles are the geodesics (the optimal alpha walks one
#                        at constant speed in gamma_w time); dp/dt taken as R_t p.
# Each reduces to alpha'^2 / (gamma_w' alpha (1 - alpha)) whatever q is, which is the claim a test checks numerically.


def uniform_token_data(vocabulary: int = 2) -> Floats:
    """A default data distribution q over the vocabulary (the energies do not depend on it, which is tested)."""
    return np.full(vocabulary, 1.0 / vocabulary)


def _check_data(data: ArrayLike | None) -> Floats:
    q = uniform_token_data() if data is None else np.asarray(data, dtype=np.float64)
    if q.ndim != 1 or q.size < 1 or np.any(q < 0) or not np.isclose(q.sum(), 1.0, atol=1e-12):
        raise InvalidInput("data", "must be a probability vector over the vocabulary")
    return q


def beta_path_point(t: float, a: float, b: float) -> tuple[float, float, float]:
    """(alpha(t), 1 - alpha(t), alpha'(t)) for the Beta point, each to full relative precision.

    1 - alpha = sin^2(pi/2 (1 - gamma)) with 1 - gamma = I_{1-t}(b, a), not 1 - alpha: near t = 1 the rates divide
    by it. alpha' = pi/2 sin(pi gamma) f_{a,b}(t).
    """
    from scipy.stats import beta as beta_distribution  # see schedule_energy: start-up time

    gamma = float(beta_gamma(np.array([t]), a, b)[0])
    gamma_bar = float(beta_gamma(np.array([1.0 - t]), b, a)[0])
    alpha = math.sin(0.5 * math.pi * gamma) ** 2
    masked = math.sin(0.5 * math.pi * gamma_bar) ** 2
    alpha_prime = 0.5 * math.pi * math.sin(math.pi * min(gamma, gamma_bar)) * float(beta_distribution.pdf(t, a, b))
    return alpha, masked, alpha_prime


def mdm_token_path(alpha: float, masked: float, data: Floats) -> Floats:
    """p_t over (MASK, 1..V): (1 - alpha, alpha q)."""
    return np.concatenate([[masked], alpha * data])


def mdm_rate_matrix(masked: float, alpha_prime: float, data: Floats) -> Floats:
    """R_t[y, x], the rate of x -> y of the single-token MDM; columns sum to 0 (a generator)."""
    rate = alpha_prime / masked
    matrix = np.zeros((data.size + 1, data.size + 1))
    matrix[1:, 0] = rate * data
    matrix[0, 0] = -rate
    return matrix


def kinetic_density(probabilities: Floats, rates: Floats) -> float:
    """sum_{x != y} j(y, x)^2 / (p(x) p(y)) with j(y, x) = R[y, x] p(x); pairs without flux contribute nothing."""
    flux = rates * probabilities[None, :]
    np.fill_diagonal(flux, 0.0)
    moving = flux != 0.0
    denominator = np.outer(probabilities, probabilities)
    return float(np.sum(flux[moving] ** 2 / denominator[moving]))


def geodesic_density(probabilities: Floats, rates: Floats) -> float:
    """4 |d sqrt(p)/dt|^2 = sum_x (dp(x)/dt)^2 / p(x), with dp/dt = R p (the Kolmogorov forward equation)."""
    velocity = rates @ probabilities
    support = probabilities > 0
    return float(np.sum(velocity[support] ** 2 / probabilities[support]))


def conditional_kinetic_density(alpha: float, masked: float, alpha_prime: float, data: Floats) -> float:
    """E_{x0 ~ q} of the kinetic density of the path conditioned on x0 (a point mass moving from MASK to x0)."""
    total = 0.0
    for token, weight in enumerate(data):
        if weight == 0.0:
            continue
        one_hot = np.zeros_like(data)
        one_hot[token] = 1.0
        path = mdm_token_path(alpha, masked, one_hot)
        total += weight * kinetic_density(path, mdm_rate_matrix(masked, alpha_prime, one_hot))
    return total


ENDPOINT_CLEARANCE = 1e-10
"""QAWS's rule includes t = 0 and t = 1, where the path's probabilities underflow; the remainder there is taken
this close to the end instead (it tends to a finite limit, and the end nodes carry almost no weight)."""


def _densities(kind: str, data: Floats) -> Callable[[float, float, float], float]:
    if kind == "kinetic":
        return lambda al, m, ap: kinetic_density(mdm_token_path(al, m, data), mdm_rate_matrix(m, ap, data))
    if kind == "conditional_kinetic":
        return lambda al, m, ap: conditional_kinetic_density(al, m, ap, data)
    if kind == "geodesic":
        return lambda al, m, ap: geodesic_density(mdm_token_path(al, m, data), mdm_rate_matrix(m, ap, data))
    raise InvalidInput("kind", f"unknown energy {kind!r}; allowed: kinetic, conditional_kinetic, geodesic")


def mdm_energy(
    kind: str, a: float, b: float, weight_a: float = 1.0, weight_b: float = 1.0, data: ArrayLike | None = None
) -> float:
    """The single-token MDM energy `kind` (kinetic | conditional_kinetic | geodesic) of alpha_{a,b} under gamma_w.

    Integrated numerically from the path and rate matrix above. Where the integral diverges (the same endpoint rule
    as `diverges`: all three densities equal alpha'^2 / (alpha (1 - alpha)), so they share its endpoint powers) the
    result is +inf. Otherwise QAWS integrates the endpoint powers t^p (1 - t)^q, p = 2a - a_w - 1, q = 2b - b_w - 1,
    exactly and the density divided by them numerically.
    """
    a_f, b_f = (float(x) for x in check_shape_parameters(a, b))
    wa, wb = (float(x) for x in check_weight(weight_a, weight_b))
    q = _check_data(data)
    density = _densities(kind, q)
    if diverges(a_f, b_f, wa, wb):
        return math.inf
    from scipy import integrate  # see schedule_energy: start-up time
    from scipy.stats import beta as beta_distribution

    p_left, p_right = 2.0 * a_f - wa - 1.0, 2.0 * b_f - wb - 1.0

    def remainder(t: float) -> float:
        t = min(max(t, ENDPOINT_CLEARANCE), 1.0 - ENDPOINT_CLEARANCE)  # QAWS evaluates the end nodes themselves
        alpha, masked, alpha_prime = beta_path_point(t, a_f, b_f)
        value = density(alpha, masked, alpha_prime) / float(beta_distribution.pdf(t, wa, wb))
        return value / (t**p_left * (1.0 - t) ** p_right)

    value, _ = integrate.quad(remainder, 0.0, 1.0, weight="alg", wvar=(p_left, p_right), epsrel=1e-9, limit=200)
    return float(value)


def discrete_geodesic_energy(
    a: float, b: float, steps: int, weight_a: float = 1.0, weight_b: float = 1.0, data: ArrayLike | None = None
) -> float:
    """4 sum_k |sqrt(p_{t_{k+1}}) - sqrt(p_{t_k})|^2 / (gamma_w(t_{k+1}) - gamma_w(t_k)) over the full token path.

    The squared chord between consecutive sqrt-probability vectors is 2 (1 - cos(theta_{k+1} - theta_k)) for every
    q, so this is the chord form E_N computed from the MDM's path instead of from theta: a test shows they agree.
    """
    q = _check_data(data)
    grid = step_grid(steps)
    alpha = beta_gamma(grid, a, b)
    gamma_bar = beta_gamma(1.0 - grid, b, a)
    root_alpha, root_masked = np.sin(0.5 * math.pi * alpha), np.sin(0.5 * math.pi * gamma_bar)
    roots = np.concatenate([root_masked[:, None], root_alpha[:, None] * np.sqrt(q)[None, :]], axis=1)
    chords = np.sum(np.diff(roots, axis=0) ** 2, axis=1)
    wa, wb = (float(x) for x in check_weight(weight_a, weight_b))
    return float(4.0 * np.sum(chords / cdf_increments(grid, wa, wb)))
