"""Sampling plans: how a schedule on the N-step grid becomes per-step work for a sampler (docs/math.md).

- Count plan (LLaDA / MaskGIT samplers): K_k tokens committed at step k, the Hamilton (largest-remainder)
  apportionment of the M masked positions over the increments alpha(t_{k+1}) - alpha(t_k), ties to earlier steps.
- Block plans (LLaDA's semi-autoregressive mode): the steps split evenly over blocks, a count plan inside each;
  `count_plans` is the one place they are derived (per row and per block), every other site calls it.
- Ancestral plan (MDLM / SEDD): the per-step probability that a still-masked token is unmasked.
Pure numpy; no web, no database.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mdmtune.core.schedules import Schedule, check_steps
from mdmtune.errors import InvalidInput

TIE_TOLERANCE = 1e-9
"""Fractional parts (and quotas vs integers) closer than this count as equal (docs/math.md)."""

Ints = NDArray[np.int64]


def _increments(alpha_grid: ArrayLike) -> NDArray[np.float64]:
    alpha = np.asarray(alpha_grid, dtype=np.float64)
    if alpha.ndim not in (1, 2) or alpha.shape[-1] < 2:
        raise InvalidInput("alpha_grid", "must have shape (N+1,) or (S, N+1) with N >= 1")
    increments = np.diff(alpha, axis=-1)
    if np.any(increments < -TIE_TOLERANCE) or not np.all(np.isfinite(increments)):
        raise InvalidInput("alpha_grid", "must be finite and non-decreasing")
    if np.any(alpha[..., -1] - alpha[..., 0] <= 0):
        raise InvalidInput("alpha_grid", "must increase from start to end")
    return np.clip(increments, 0.0, None)


def count_plan(alpha_grid: ArrayLike, masked: int) -> Ints:
    """K_k for M = `masked` positions: shape (N,) for one schedule, (S, N) for a stack; every row sums to M.

    Quotas q_k = M d_k / sum(d); K_k = floor(q_k), then one more for each of the largest fractional parts, the
    earlier step winning ties. Quotas within 1e-9 of an integer are snapped first, so that float noise in d_k never
    moves a token (linear then equals LLaDA's get_num_transfer_tokens).
    """
    _check_masked(masked)
    increments = _increments(alpha_grid)
    single = increments.ndim == 1
    increments = np.atleast_2d(increments)
    quotas = masked * increments / increments.sum(axis=-1, keepdims=True)
    nearest = np.round(quotas)
    quotas = np.where(np.abs(quotas - nearest) < TIE_TOLERANCE, nearest, quotas)
    counts = np.floor(quotas).astype(np.int64)
    fractions = quotas - counts
    for row in range(counts.shape[0]):
        _give_remainder(counts[row], fractions[row], masked - int(counts[row].sum()))
    return counts[0] if single else counts


def _check_masked(masked: object) -> None:
    if isinstance(masked, bool) or not isinstance(masked, (int, np.integer)) or masked < 0:
        raise InvalidInput("masked", f"must be an integer >= 0, got {masked!r}")


def count_plans(alpha_grid: ArrayLike, masked: ArrayLike) -> Ints:
    """K [S, n_blocks, n]: row s's count plan in block b, from its alpha on one block's n-step grid
    (alpha_grid [S, n+1]) over its masked count in that block (masked [S, n_blocks]).

    The one place plans per row and per block are derived: the sampler (one schedule and one mask per row), the
    block plans of a schedule, and the tuner's plan comparisons call it. With n blocks of an N-step run a block's
    grid is the N/n-step grid (every n-th point of the N-step grid). Rows sharing a grid and a masked count share
    one computation, since a batch holds many records per schedule.
    """
    grid = np.atleast_2d(np.asarray(alpha_grid, dtype=np.float64))
    table = np.asarray(masked, dtype=object)
    if table.ndim != 2 or table.shape[0] != grid.shape[0]:
        raise InvalidInput("masked", f"must have shape ({grid.shape[0]}, n_blocks), got {table.shape}")
    for value in table.flat:
        _check_masked(value)
    counts = table.astype(np.int64)
    plans = np.zeros((grid.shape[0], counts.shape[1], grid.shape[1] - 1), dtype=np.int64)
    for block in range(counts.shape[1]):
        column = counts[:, block]
        for value in np.unique(column):
            rows = np.flatnonzero(column == value)
            distinct, which = np.unique(grid[rows], axis=0, return_inverse=True)
            plans[rows, block] = count_plan(distinct, int(value))[which.reshape(-1)]
    return plans


def _give_remainder(counts: Ints, fractions: NDArray[np.float64], remainder: int) -> None:
    """Hand the leftover tokens one by one to the largest fractional part, earliest step among near-equals."""
    fractions = fractions.copy()
    for _ in range(remainder):
        best = fractions.max()
        winner = int(np.flatnonzero(fractions >= best - TIE_TOLERANCE)[0])
        counts[winner] += 1
        fractions[winner] = -np.inf


def check_blocks(gen_length: int, block_length: int, steps: int) -> int:
    """The number of semi-autoregressive blocks; LLaDA's rules: B divides L, and the block count divides N."""
    check_steps(steps)
    for field, value in (("gen_length", gen_length), ("block_length", block_length)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidInput(field, f"must be an integer >= 1, got {value!r}")
    if gen_length % block_length:
        raise InvalidInput("block_length", f"must divide gen_length {gen_length}, got {block_length}")
    n_blocks = gen_length // block_length
    if steps % n_blocks:
        raise InvalidInput("steps", f"must be divisible by the number of blocks {n_blocks}, got {steps}")
    return n_blocks


def block_count_plans(schedule: Schedule, steps: int, masked_per_block: list[int]) -> list[Ints]:
    """One count plan per block, each over steps / n_blocks steps of the same schedule, on the block's own mask."""
    check_steps(steps)
    n_blocks = len(masked_per_block)
    if n_blocks < 1 or steps % n_blocks:
        raise InvalidInput("steps", f"must be divisible by the number of blocks {n_blocks}, got {steps}")
    return list(count_plans(schedule.on_grid(steps // n_blocks), [masked_per_block])[0])


def ancestral_probabilities(alpha_grid: ArrayLike) -> NDArray[np.float64]:
    """p_k = (alpha_{k+1} - alpha_k) / (1 - alpha_k): the chance a still-masked token unmasks at step k.

    The last step is 1 exactly, so that nothing stays masked at t = 1 whatever float noise alpha carries.
    """
    increments = _increments(alpha_grid)
    alpha = np.asarray(alpha_grid, dtype=np.float64)[..., :-1]
    remaining = 1.0 - alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        probabilities = np.where(remaining > 0, increments / remaining, 1.0)
    probabilities = np.clip(probabilities, 0.0, 1.0)
    probabilities[..., -1] = 1.0
    return probabilities
