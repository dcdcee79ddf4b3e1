"""The exact toy of the paper (Appendix E.6, Fig. 4): where the mask schedule's effect can be computed, not estimated.

Five tokens over {a, b}, two targets, each uniform on its support: "extremes" = {aaaaa, bbbbb} and "two-or-three"
(exactly 2 or 3 a's). The denoiser is the exact posterior (each masked position's marginal given the unmasked
tokens); tokens unmasked in the same step draw their values independently from those marginals. That factorization
is the only error there is, and it is what the schedule trades off: unmasking many tokens at once is cheap in steps
but breaks correlations (extremes suffers badly), unmasking few per step is exact.

The generated distribution is computed exactly by dynamic programming over the 3^5 = 243 partial states. A step is
a mix of "reveal j of the m masked tokens" matrices R_j (precomputed per target), weighted per state by the sampler:
ancestral p^j (1-p)^(m-j), count [j = K_k] / C(m, K_k). That makes a step one matrix product, vectorized over many
schedules at once, so a whole (a, b) grid takes milliseconds. `toy_monte_carlo` simulates the same process token by
token, written separately, to check the dynamic programme. Pure numpy: no web, no database.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mdmtune.core.plans import ancestral_probabilities, count_plan
from mdmtune.core.schedules import Schedule, beta, beta_alpha, check_steps, step_grid
from mdmtune.errors import InvalidInput

LENGTH = 5
"""n: tokens in a toy sequence."""
LETTERS = "ab"
MASK = 2
"""A partial state is a base-3 number, one digit per position: 0 = a, 1 = b, 2 = [MASK]; position 0 first."""
N_STATES = 3**LENGTH
SEQUENCES: tuple[str, ...] = tuple("".join(letters) for letters in itertools.product(LETTERS, repeat=LENGTH))
"""All 32 sequences in lexicographic order (the order of every probability vector here)."""
TARGETS: tuple[str, ...] = ("extremes", "two-or-three")
SAMPLERS: tuple[str, ...] = ("ancestral", "count")

Floats = NDArray[np.float64]


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise InvalidInput("target", f"unknown target {target!r}; allowed: {', '.join(TARGETS)}")
    return target


def check_sampler(sampler: str) -> str:
    if sampler not in SAMPLERS:
        raise InvalidInput("sampler", f"unknown sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}")
    return sampler


def target_probabilities(target: str) -> Floats:
    """The target as a (32,) vector over SEQUENCES, uniform on its support."""
    check_target(target)
    a_counts = np.array([sequence.count("a") for sequence in SEQUENCES])
    support = np.isin(a_counts, (0, LENGTH)) if target == "extremes" else np.isin(a_counts, (2, 3))
    return support / support.sum()


def target_distribution(target: str) -> dict[str, float]:
    """The target as sequence -> probability (all 32 sequences)."""
    return dict(zip(SEQUENCES, target_probabilities(target).tolist(), strict=True))


@lru_cache(maxsize=1)
def _state_digits() -> NDArray[np.int64]:
    """(243, 5): the digits of every partial state, in index order."""
    return _read_only(np.array(list(itertools.product(range(3), repeat=LENGTH)), dtype=np.int64))


def _state_index(digits: ArrayLike) -> int:
    return int(np.dot(digits, 3 ** np.arange(LENGTH - 1, -1, -1)))


def _posterior_marginal_a(digits: NDArray[np.int64], target: Floats, sequences: NDArray[np.int64]) -> Floats:
    """P(x_i = a | unmasked tokens) for each position; 1/2 where no target sequence matches the partial state."""
    unmasked = digits != MASK
    matches = np.all((sequences == digits) | ~unmasked, axis=1)
    weights = target * matches
    total = weights.sum()
    if total == 0:
        return np.full(LENGTH, 0.5)
    return weights @ (sequences == 0) / total


@lru_cache(maxsize=len(TARGETS))
def _reveal_matrices(target: str) -> Floats:
    """(LENGTH+1, 243, 243): R_j[s, s'] = sum over the size-j subsets of s's masked positions of P(s -> s').

    Each subset's values are drawn independently from the posterior marginals at s, so a row of R_j sums to
    C(m, j): one unit of probability per subset. The sampler's weights turn these into a stochastic matrix.
    """
    target_p = target_probabilities(target)
    sequences = _state_digits()[_complete_states()]
    reveal = np.zeros((LENGTH + 1, N_STATES, N_STATES))
    for source, digits in enumerate(_state_digits()):
        p_a = _posterior_marginal_a(digits, target_p, sequences)
        masked = np.flatnonzero(digits == MASK)
        for j in range(len(masked) + 1):
            for subset in itertools.combinations(masked, j):
                for values in itertools.product((0, 1), repeat=j):
                    child = digits.copy()
                    child[list(subset)] = values
                    chance = math.prod(p_a[i] if v == 0 else 1.0 - p_a[i] for i, v in zip(subset, values, strict=True))
                    reveal[j, source, _state_index(child)] += chance
    return _read_only(reveal)


@lru_cache(maxsize=1)
def _masked_counts() -> NDArray[np.int64]:
    return _read_only((_state_digits() == MASK).sum(axis=1))


@lru_cache(maxsize=1)
def _complete_states() -> NDArray[np.int64]:
    """Indices of the 32 fully unmasked states, in SEQUENCES order."""
    return _read_only(np.flatnonzero(_masked_counts() == 0))


def _ancestral_weights(probability: Floats) -> Floats:
    """(S, LENGTH+1, 243): p^j (1-p)^(m-j) for each schedule, each j, each state with m masked (0 where j > m)."""
    m = _masked_counts()[None, None, :]
    j = np.arange(LENGTH + 1)[None, :, None]
    p = probability[:, None, None]
    weights = p**j * (1.0 - p) ** np.maximum(m - j, 0)
    return np.where(j <= m, weights, 0.0)


def _count_weights(counts: NDArray[np.int64]) -> Floats:
    """(S, LENGTH+1, 243): [j = K_k] / C(m, K_k): K_k of the m masked positions, every subset equally likely."""
    m = _masked_counts()[None, None, :]
    j = np.arange(LENGTH + 1)[None, :, None]
    chosen = (j == counts[:, None, None]) & (j <= m)
    return chosen / _subset_counts()[None, :, :]


@lru_cache(maxsize=1)
def _subset_counts() -> NDArray[np.int64]:
    """(LENGTH+1, 243): C(m, j), the number of ways to pick j of a state's m masked positions (1 where j > m)."""
    return _read_only(np.array([[math.comb(int(m), j) or 1 for m in _masked_counts()] for j in range(LENGTH + 1)]))


def _read_only(array: np.ndarray) -> np.ndarray:
    """Cached tables are shared by every caller: nobody may write into them."""
    array.flags.writeable = False
    return array


def _check_alpha_grids(alpha_grid: ArrayLike) -> Floats:
    alpha = np.asarray(alpha_grid, dtype=np.float64)
    if alpha.ndim not in (1, 2) or alpha.shape[-1] < 2:
        raise InvalidInput("alpha_grid", "must have shape (N+1,) or (S, N+1) with N >= 1")
    if np.any(np.abs(alpha[..., 0]) > 1e-12) or np.any(np.abs(alpha[..., -1] - 1.0) > 1e-12):
        raise InvalidInput("alpha_grid", "must start at alpha(0) = 0 and end at alpha(1) = 1")
    return alpha


def generated_probabilities(target: str, alpha_grid: ArrayLike, sampler: str) -> Floats:
    """The exact generated distribution over SEQUENCES: (32,) for one alpha grid (N+1,), (S, 32) for (S, N+1)."""
    check_target(target)
    check_sampler(sampler)
    alpha = _check_alpha_grids(alpha_grid)
    single = alpha.ndim == 1
    alpha = np.atleast_2d(alpha)
    if sampler == "ancestral":
        per_step = ancestral_probabilities(alpha)
        step_weights = [_ancestral_weights(per_step[:, k]) for k in range(per_step.shape[1])]
    else:
        counts = count_plan(alpha, LENGTH)
        step_weights = [_count_weights(counts[:, k]) for k in range(counts.shape[1])]
    reveal = _reveal_matrices(target).reshape((LENGTH + 1) * N_STATES, N_STATES)
    state = np.zeros((alpha.shape[0], N_STATES))
    state[:, N_STATES - 1] = 1.0  # all [MASK]
    for weights in step_weights:
        state = (state[:, None, :] * weights).reshape(alpha.shape[0], -1) @ reveal
    generated = state[:, _complete_states()]
    return generated[0] if single else generated


def toy_distribution(target: str, alpha_grid: ArrayLike, sampler: str) -> dict[str, float]:
    """The exact generated distribution for one alpha on the N-step grid: sequence -> probability (all 32)."""
    probabilities = generated_probabilities(target, np.asarray(alpha_grid, dtype=np.float64).ravel(), sampler)
    return dict(zip(SEQUENCES, probabilities.tolist(), strict=True))


@dataclass(frozen=True)
class ToyMetrics:
    """How far the generated distribution is from the target.

    tv: total variation; kl: KL(target || generated), inf when the generator misses target mass; support_mass: the
    generated mass on the target's support (1 - the rate of invalid sequences).
    """

    tv: float
    kl: float
    support_mass: float


def _as_vector(distribution: dict[str, float] | ArrayLike) -> Floats:
    if isinstance(distribution, dict):
        unknown = set(distribution) - set(SEQUENCES)
        if unknown:
            raise InvalidInput("distribution", f"unknown sequences {sorted(unknown)[:3]}; use 5 letters of a and b")
        return np.array([float(distribution.get(sequence, 0.0)) for sequence in SEQUENCES])
    vector = np.asarray(distribution, dtype=np.float64)
    if vector.shape[-1] != len(SEQUENCES):
        raise InvalidInput("distribution", f"must have {len(SEQUENCES)} probabilities, got shape {vector.shape}")
    return vector


def metric_arrays(target: str, generated: ArrayLike) -> tuple[Floats, Floats, Floats]:
    """(tv, kl, support_mass) for a (32,) or (S, 32) array of generated distributions: the grid sweeps use this."""
    p = target_probabilities(target)
    q = _as_vector(generated)
    tv = 0.5 * np.abs(q - p).sum(axis=-1)
    support = p > 0
    with np.errstate(divide="ignore"):
        log_ratio = np.where(support, np.log(np.where(support, p, 1.0)) - np.log(q), 0.0)
    kl = np.where(np.any(support & (q <= 0), axis=-1), np.inf, (p * log_ratio).sum(axis=-1))
    return tv, kl, (q * support).sum(axis=-1)


def toy_metrics(target: str, distribution: dict[str, float] | ArrayLike) -> ToyMetrics:
    """tv, KL(target || generated) and the mass on the target's support for one generated distribution."""
    tv, kl, support_mass = metric_arrays(target, distribution)
    return ToyMetrics(tv=float(tv), kl=float(kl), support_mass=float(support_mass))


@dataclass(frozen=True)
class ToyResult:
    """One schedule's exact toy result; `distribution` maps each of the 32 sequences to its generated probability."""

    target: str
    sampler: str
    steps: int
    schedule: str
    a: float | None
    b: float | None
    tv: float
    kl: float
    support_mass: float
    distribution: dict[str, float]


def run_toy_schedule(target: str, schedule: Schedule, steps: int, sampler: str) -> ToyResult:
    """The toy for any schedule (a Beta point or a named one such as sine) at N steps."""
    check_target(target)
    check_sampler(sampler)
    distribution = toy_distribution(target, schedule.on_grid(check_steps(steps)), sampler)
    return ToyResult(
        target=target,
        sampler=sampler,
        steps=steps,
        schedule=schedule.name,
        a=schedule.a,
        b=schedule.b,
        distribution=distribution,
        **asdict(toy_metrics(target, distribution)),
    )


def run_toy(target: str, a: float, b: float, steps: int, sampler: str) -> ToyResult:
    """The toy for the Beta schedule alpha_{a,b} at N steps."""
    return run_toy_schedule(target, beta(a, b), steps, sampler)


def tv_grid(target: str, a_values: ArrayLike, b_values: ArrayLike, steps: int, sampler: str) -> Floats:
    """TV[b_index, a_index] over the (a, b) grid, all schedules in one vectorized pass (Fig. 4)."""
    a_grid, b_grid = np.meshgrid(np.asarray(a_values, dtype=np.float64), np.asarray(b_values, dtype=np.float64))
    alpha = beta_alpha(step_grid(steps), a_grid.ravel(), b_grid.ravel())
    generated = generated_probabilities(target, alpha, sampler)
    return metric_arrays(target, generated)[0].reshape(a_grid.shape)


def toy_monte_carlo(target: str, alpha_grid: ArrayLike, sampler: str, n: int, seed: int) -> dict[str, float]:
    """Empirical distribution of n simulated runs of the same sampler, token by token (an independent check).

    Shares nothing with the dynamic programme but the target's support: positions, posterior and values are drawn
    directly, all n runs at once.
    """
    check_target(target)
    check_sampler(sampler)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidInput("n", f"must be an integer >= 1, got {n!r}")
    alpha = _check_alpha_grids(np.asarray(alpha_grid, dtype=np.float64).ravel())
    rng = np.random.default_rng(seed)
    support = np.array([[letter == "b" for letter in s] for s in SEQUENCES])[target_probabilities(target) > 0]
    tokens = np.full((n, LENGTH), -1)  # -1 = [MASK], 0 = a, 1 = b
    for k in range(alpha.size - 1):
        masked = tokens < 0
        if sampler == "ancestral":
            chance = 1.0 if k == alpha.size - 2 else (alpha[k + 1] - alpha[k]) / (1.0 - alpha[k])
            reveal = masked & (rng.random((n, LENGTH)) < chance)
        else:
            reveal = _random_positions(rng, masked, int(count_plan(alpha, LENGTH)[k]))
        tokens = np.where(reveal, _posterior_draw(rng, tokens, support), tokens)
    index = tokens @ (2 ** np.arange(LENGTH - 1, -1, -1))  # a = 0, b = 1 as binary digits: SEQUENCES order
    frequencies = np.bincount(index, minlength=len(SEQUENCES)) / n
    return dict(zip(SEQUENCES, frequencies.tolist(), strict=True))


def _random_positions(rng: np.random.Generator, masked: NDArray[np.bool_], count: int) -> NDArray[np.bool_]:
    """`count` of each row's masked positions, uniformly: the smallest random keys among the masked."""
    keys = np.where(masked, rng.random(masked.shape), np.inf)
    ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
    return masked & (ranks < count)


def _posterior_draw(rng: np.random.Generator, tokens: NDArray[np.int64], support: NDArray[np.bool_]) -> NDArray:
    """A value for every position from its posterior marginal given each row's unmasked tokens (uniform support).

    The posterior is worked out once per distinct partial state among the rows, then handed to every row in it.
    """
    codes, row_of = np.unique((tokens + 1) @ (3 ** np.arange(LENGTH)), return_inverse=True)
    partial = (codes[:, None] // 3 ** np.arange(LENGTH)) % 3 - 1
    known = partial >= 0
    agree = np.all((support[None, :, :] == (partial[:, None, :] == 1)) | ~known[:, None, :], axis=2).astype(np.float64)
    matching = agree.sum(axis=1, keepdims=True)
    p_b = np.where(matching > 0, agree @ support.astype(np.float64) / np.maximum(matching, 1.0), 0.5)
    return (rng.random(tokens.shape) < p_b[row_of.ravel()]).astype(np.int64)
