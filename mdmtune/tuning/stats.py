"""The statistics behind a reported result: a Wilson interval on a score and a paired bootstrap of a difference.

Why these two: per-record scores are mostly 0/1 (solved or not), and the eval sets are small (tens to hundreds of
records), where the Wilson interval keeps its coverage and never leaves [0, 1] (the normal one does). Schedules are
compared on the same records with the same seeds (common random numbers), so the honest interval on a difference
resamples records, keeping each record's pair together: the paired bootstrap. `paired(first, second)` makes both for
one rival against one reference (`Paired`); every result that compares two schedules or decoders is made from one.
Pure numpy/scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from mdmtune.errors import InvalidInput


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [self.low, self.high]

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for a proportion successes / n.

    `successes` may be fractional (mean of [0, 1] scores times n): the interval is then the Wilson interval at that
    effective count, which is what one wants for scores averaged over replicates.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InvalidInput("n", f"must be an integer >= 1, got {n!r}")
    if not 0 <= successes <= n:
        raise InvalidInput("successes", f"must be within [0, {n}], got {successes!r}")
    if not 0 < confidence < 1:
        raise InvalidInput("confidence", f"must be in (0, 1), got {confidence!r}")
    from scipy.stats import norm  # here, not at the top: the result types import this module at CLI start-up

    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, center - half)  # the ends are exactly 0 and 1 there; float
    high = 1.0 if successes == n else min(1.0, center + half)  # rounding would put them a hair inside
    return Interval(low, high)


def score_interval(scores: ArrayLike, confidence: float = 0.95) -> Interval:
    """Wilson interval of the mean of per-record scores in [0, 1] (the record count is n)."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    if values.size == 0:
        raise InvalidInput("scores", "need at least one score")
    if np.any(values < 0) or np.any(values > 1):
        raise InvalidInput("scores", "Wilson interval needs scores in [0, 1]")
    return wilson_interval(float(values.sum()), int(values.size), confidence)


def paired_bootstrap_ci(
    first: ArrayLike, second: ArrayLike, *, resamples: int = 10_000, seed: int = 0, confidence: float = 0.95
) -> Interval:
    """Percentile bootstrap interval of mean(first - second), resampling records with their pairs kept together.

    `first` and `second` are per-record scores of two schedules on the same records (same seeds). The draws come
    from numpy's PCG64 seeded with `seed`, so a result is reproducible.
    """
    differences = _paired_differences(first, second)
    if resamples < 1:
        raise InvalidInput("resamples", f"must be >= 1, got {resamples!r}")
    rng = np.random.default_rng(seed)
    n = differences.size
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = differences[idx].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(float(low), float(high))


@dataclass(frozen=True)
class Paired:
    """Two schedules (or decoders) scored on the same n records with the same noise: `first` against `second`.

    Why one type: every result that sets a rival against a reference (the best against each baseline, a compared
    schedule against the baseline, a frontier point against linear, one group of records) reports these numbers,
    and each made them the same way. Both sides keep their mean and Wilson interval, since results show either
    side's score: a baseline row shows the baseline's score beside best - baseline.
    """

    score: float
    """Mean of `first`."""
    ci: Interval
    """Wilson interval of `first`'s mean."""
    reference: float
    """Mean of `second`."""
    reference_ci: Interval
    """Wilson interval of `second`'s mean."""
    diff: float
    """mean(first) - mean(second)."""
    diff_ci: Interval
    """Paired bootstrap interval of the difference."""
    n: int
    """Records (pairs)."""


def paired(
    first: ArrayLike, second: ArrayLike, *, resamples: int = 10_000, seed: int = 0, confidence: float = 0.95
) -> Paired:
    """`first` against `second`: per-record scores in [0, 1] on the same records, in the same order.

    Means are taken in the arrays' own dtype and both intervals at `confidence`; the bootstrap is
    `paired_bootstrap_ci(first, second, ...)` with its own generator seeded by `seed`, so a Paired does not depend
    on what was computed before it."""
    a, b = np.asarray(first), np.asarray(second)
    return Paired(
        score=float(a.mean()),
        ci=score_interval(a, confidence),
        reference=float(b.mean()),
        reference_ci=score_interval(b, confidence),
        diff=float(a.mean() - b.mean()),
        diff_ci=paired_bootstrap_ci(a, b, resamples=resamples, seed=seed, confidence=confidence),
        n=int(a.size),
    )


def _paired_differences(first: ArrayLike, second: ArrayLike) -> np.ndarray:
    a = np.asarray(first, dtype=np.float64).ravel()
    b = np.asarray(second, dtype=np.float64).ravel()
    if a.size != b.size:
        raise InvalidInput("scores", f"paired scores need equal lengths, got {a.size} and {b.size}")
    if a.size == 0:
        raise InvalidInput("scores", "need at least one pair")
    return a - b
