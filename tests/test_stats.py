"""The reported intervals: Wilson against scipy's own, the paired bootstrap against a brute-force loop and
scipy.stats.bootstrap, and both against their nominal coverage on simulated data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, bootstrap

from mdmtune.errors import InvalidInput
from mdmtune.tuning.result import BaselineScore
from mdmtune.tuning.stats import Interval, paired, paired_bootstrap_ci, score_interval, wilson_interval


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (5, 10), (10, 10), (37, 120), (3, 7), (199, 200)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_interval_equals_scipy_binomtest_wilson(k, n, confidence):
    expected = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    got = wilson_interval(k, n, confidence)
    assert got.low == pytest.approx(expected.low, abs=1e-12)
    assert got.high == pytest.approx(expected.high, abs=1e-12)


def test_score_interval_of_binary_scores_is_the_wilson_interval_of_their_count():
    scores = np.array([1, 0, 1, 1, 0, 1, 0, 0, 1, 1.0])
    assert score_interval(scores) == wilson_interval(6, 10)


def test_wilson_interval_covers_about_95_percent():
    rng = np.random.default_rng(0)
    for p, n in [(0.1, 40), (0.5, 25), (0.8, 100)]:
        hits = rng.binomial(n, p, size=1500)
        covered = np.mean([wilson_interval(int(k), n).contains(p) for k in hits])
        assert 0.92 <= covered <= 0.98


def brute_force_bootstrap(first, second, resamples, seed, confidence=0.95):
    """The paired bootstrap by hand, one resample at a time, with the same random stream."""
    rng = np.random.default_rng(seed)
    diffs = np.asarray(first, float) - np.asarray(second, float)
    means = []
    for _ in range(resamples):
        idx = rng.integers(0, len(diffs), size=len(diffs))
        means.append(sum(diffs[i] for i in idx) / len(diffs))
    tail = (1 - confidence) / 2
    return np.quantile(means, [tail, 1 - tail])


def test_paired_bootstrap_equals_a_brute_force_loop_with_the_same_draws():
    rng = np.random.default_rng(1)
    first, second = rng.integers(0, 2, 60), rng.integers(0, 2, 60)
    got = paired_bootstrap_ci(first, second, resamples=2000, seed=7)
    low, high = brute_force_bootstrap(first, second, 2000, 7)
    assert got.low == pytest.approx(low, abs=1e-12)
    assert got.high == pytest.approx(high, abs=1e-12)


def test_paired_bootstrap_agrees_with_scipy_percentile_bootstrap():
    rng = np.random.default_rng(2)
    first = rng.normal(0.6, 0.3, 80)
    second = first - rng.normal(0.1, 0.2, 80)
    got = paired_bootstrap_ci(first, second, resamples=20000, seed=0)
    reference = bootstrap(
        (first, second),
        lambda x, y: np.mean(x - y),
        paired=True,
        vectorized=False,
        n_resamples=20000,
        method="percentile",
        random_state=np.random.default_rng(5),
    ).confidence_interval
    assert got.low == pytest.approx(reference.low, abs=0.01)
    assert got.high == pytest.approx(reference.high, abs=0.01)


def test_pairing_narrows_the_interval_when_schedules_share_their_records():
    """Common random numbers pay off only if the pairs stay together: an unpaired resample is much wider."""
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2, 100).astype(float)
    flip = rng.random(100) < 0.1
    other = np.where(flip, 1 - base, base)
    paired = paired_bootstrap_ci(base, other, seed=0)
    unpaired_sd = np.sqrt(base.var() / 100 + other.var() / 100)
    assert (paired.high - paired.low) < 0.6 * (2 * 1.96 * unpaired_sd)


def test_paired_bootstrap_covers_the_true_difference_about_95_percent():
    rng = np.random.default_rng(4)
    covered = 0
    trials = 300
    for _ in range(trials):
        first = rng.binomial(1, 0.6, 80).astype(float)
        second = np.where(rng.random(80) < 0.3, rng.binomial(1, 0.5, 80), first)
        true = 0.6 - (0.7 * 0.6 + 0.3 * 0.5)
        covered += paired_bootstrap_ci(first, second, resamples=1000, seed=int(rng.integers(1 << 30))).contains(true)
    assert 0.89 <= covered / trials <= 0.99


def test_bad_inputs_name_their_field():
    with pytest.raises(InvalidInput) as error:
        wilson_interval(5, 0)
    assert error.value.field == "n"
    with pytest.raises(InvalidInput) as error:
        paired_bootstrap_ci([1, 0], [1, 0, 1])
    assert error.value.field == "scores"
    with pytest.raises(InvalidInput):
        score_interval([0.5, 1.5])


def test_paired_is_both_means_both_wilson_intervals_and_the_paired_bootstrap():
    rng = np.random.default_rng(4)
    first, second = rng.integers(0, 2, 60).astype(float), rng.integers(0, 2, 60).astype(float)
    pair = paired(first, second, resamples=500, seed=9, confidence=0.9)
    assert pair.score == first.mean() and pair.reference == second.mean()
    assert pair.diff == first.mean() - second.mean() and pair.n == 60
    assert pair.ci == score_interval(first, 0.9) and pair.reference_ci == score_interval(second, 0.9)
    assert pair.diff_ci == paired_bootstrap_ci(first, second, resamples=500, seed=9, confidence=0.9)


def test_paired_does_not_depend_on_what_was_drawn_before():
    first, second = np.array([1.0, 0, 1, 1, 0, 1]), np.array([0.0, 0, 1, 0, 0, 1])
    alone = paired(first, second, resamples=300, seed=2)
    paired(second, first, resamples=700, seed=5)
    np.random.default_rng(2).integers(0, 6, 100)
    assert paired(first, second, resamples=300, seed=2) == alone


def test_a_schedule_paired_with_itself_differs_by_exactly_zero():
    scores = np.array([1.0, 0.0, 0.5, 1.0, 0.25])
    pair = paired(scores, scores.copy(), resamples=1000, seed=0)
    assert pair.diff == 0.0 and pair.diff_ci == Interval(0.0, 0.0) and pair.diff_ci.as_list() == [0.0, 0.0]


def test_paired_refuses_unequal_lengths_and_scores_outside_zero_one():
    with pytest.raises(InvalidInput):
        paired([1.0, 0.0], [1.0])
    with pytest.raises(InvalidInput):
        paired([1.0, 2.0], [1.0, 0.0])


def test_a_baseline_shows_its_own_score_beside_best_minus_baseline():
    best, baseline = np.array([1.0, 1, 0, 1, 1]), np.array([0.0, 1, 0, 0, 1])
    row = BaselineScore.against_best(paired(best, baseline, resamples=200), 0.5, 0.5, nfe_per_record=3.0)
    assert (row.a, row.b, row.score, row.nfe_per_record) == (0.5, 0.5, 0.4, 3.0)
    assert row.ci == score_interval(baseline).as_list()
    assert row.diff == best.mean() - baseline.mean()
    assert row.diff_ci == paired_bootstrap_ci(best, baseline, resamples=200).as_list()
