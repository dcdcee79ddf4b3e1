"""The exact toy (docs/math.md "The exact toy"): the dynamic programme is a distribution, agrees with an independent
simulation and with closed forms, and shows the paper's Fig. 4 point."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pytest
from scipy import stats

from mdmtune.core.plans import ancestral_probabilities, count_plan
from mdmtune.core.schedules import beta, named
from mdmtune.core.toy import (
    SAMPLERS,
    SEQUENCES,
    TARGETS,
    generated_probabilities,
    run_toy,
    run_toy_schedule,
    toy_distribution,
    toy_metrics,
    toy_monte_carlo,
    tv_grid,
)
from mdmtune.errors import InvalidInput

GRID = np.geomspace(0.05, 5.0, 31)
"""The tuner's default log-uniform bounds, 31 points a side (0.5 is on it)."""


def independent_target(target: str) -> dict[str, float]:
    """The targets written out from their definitions, not from mdmtune.core.toy."""
    if target == "extremes":
        support = ["aaaaa", "bbbbb"]
    else:
        support = ["".join(s) for s in product("ab", repeat=5) if "".join(s).count("a") in (2, 3)]
    assert len(support) == (2 if target == "extremes" else 20)
    return {s: (1.0 / len(support) if s in support else 0.0) for s in ("".join(p) for p in product("ab", repeat=5))}


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("target", TARGETS)
def test_generated_distributions_are_probability_distributions_over_all_32_sequences(target, sampler):
    schedules = [named("linear"), named("cos2"), named("sine"), beta(0.5, 0.3), beta(0.05, 5.0), beta(5.0, 0.05)]
    for schedule, steps in product(schedules, (1, 2, 3, 7)):
        distribution = toy_distribution(target, schedule.on_grid(steps), sampler)
        assert list(distribution) == ["".join(p) for p in product("ab", repeat=5)]
        values = np.array(list(distribution.values()))
        assert np.all(values >= 0.0)
        assert values.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("schedule,steps", [(beta(0.5, 0.3), 3), (named("sine"), 4)])
def test_monte_carlo_simulation_agrees_with_the_exact_distribution_within_4_standard_errors(
    target, sampler, schedule, steps
):
    n = 200_000
    alpha = schedule.on_grid(steps)
    exact = toy_distribution(target, alpha, sampler)
    simulated = toy_monte_carlo(target, alpha, sampler, n=n, seed=20250913)
    for sequence in SEQUENCES:
        q = exact[sequence]
        standard_error = math.sqrt(q * (1.0 - q) / n)
        assert abs(simulated[sequence] - q) <= 4.0 * standard_error + 1e-12, sequence


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("schedule,steps", [(named("linear"), 5), (named("linear"), 10), (beta(2.0, 2.0), 9)])
def test_count_sampler_unmasking_one_token_per_step_reproduces_the_target_exactly(target, schedule, steps):
    # one token at a time from the exact posterior, in a random order, is the chain rule: no factorization error
    plan = count_plan(schedule.on_grid(steps), 5)
    assert plan.max() == 1
    generated = toy_distribution(target, schedule.on_grid(steps), "count")
    expected = independent_target(target)
    assert [generated[s] for s in SEQUENCES] == pytest.approx([expected[s] for s in SEQUENCES], abs=1e-12)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("target", TARGETS)
def test_one_step_generates_the_product_of_the_uniform_marginals(target, sampler):
    # both targets are symmetric in a <-> b, so every marginal is 1/2 and one step draws all 32 sequences alike
    generated = toy_distribution(target, np.array([0.0, 1.0]), sampler)
    assert list(generated.values()) == pytest.approx([1 / 32] * 32, abs=1e-15)
    support = 2 if target == "extremes" else 20
    metrics = toy_metrics(target, generated)
    assert metrics.support_mass == pytest.approx(support / 32, abs=1e-15)
    assert metrics.tv == pytest.approx(1.0 - support / 32, abs=1e-15)


@pytest.mark.parametrize("schedule,steps", [(beta(0.5, 0.3), 3), (named("cos2"), 4), (beta(3.0, 0.2), 6)])
def test_ancestral_extremes_support_mass_matches_its_closed_form(schedule, steps):
    # the first step that reveals anything reveals j tokens with independent fair values: consistent with prob
    # 2^(1-j), after which the posterior is deterministic; inconsistent never returns to the support
    p = ancestral_probabilities(schedule.on_grid(steps))
    still_masked, support = 1.0, 0.0
    for p_k in p:
        for j in range(1, 6):
            support += still_masked * stats.binom.pmf(j, 5, p_k) * 2.0 ** (1 - j)
        still_masked *= (1.0 - p_k) ** 5
    result = run_toy_schedule("extremes", schedule, steps, "ancestral")
    assert result.support_mass == pytest.approx(support, abs=1e-12)
    assert result.distribution["aaaaa"] == pytest.approx(support / 2, abs=1e-12)
    assert result.tv == pytest.approx(1.0 - support, abs=1e-12)


def test_count_plan_three_then_one_then_one_is_exact_for_two_or_three():
    # three fair coins, then the exact posterior: each a-count has the target's mass (1/2 on 2 a's, 1/2 on 3 a's),
    # and the sampler is exchangeable, so the result is uniform on the support
    alpha = beta(0.079, 0.126).on_grid(3)
    assert count_plan(alpha, 5).tolist() == [3, 1, 1]
    assert run_toy("two-or-three", 0.079, 0.126, 3, "count").tv == pytest.approx(0.0, abs=1e-12)
    # extremes needs the three coins to agree (probability 1/4); what is on the support is split evenly
    assert run_toy("extremes", 0.079, 0.126, 3, "count").tv == pytest.approx(0.75, abs=1e-12)


def test_metrics_are_tv_kl_and_support_mass_by_their_definitions():
    rng = np.random.default_rng(7)
    for target in TARGETS:
        generated = rng.dirichlet(np.ones(32))
        p = np.array(list(independent_target(target).values()))
        metrics = toy_metrics(target, dict(zip(SEQUENCES, generated, strict=True)))
        assert metrics.tv == pytest.approx(0.5 * np.abs(p - generated).sum(), abs=1e-14)
        assert metrics.kl == pytest.approx(stats.entropy(p, generated), abs=1e-12)
        assert metrics.support_mass == pytest.approx(generated[p > 0].sum(), abs=1e-14)


def test_kl_is_infinite_when_the_generator_misses_target_mass():
    metrics = toy_metrics("extremes", {"aaaaa": 1.0})
    assert metrics.kl == math.inf and metrics.tv == pytest.approx(0.5) and metrics.support_mass == 1.0
    assert toy_metrics("extremes", independent_target("extremes")).kl == 0.0


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_at_3_steps_the_best_grid_point_beats_linear_and_the_targets_disagree_on_it(sampler):
    """The paper's Fig. 4 point: the best schedule depends on the target, and beats linear at 3 steps."""
    best_sets = {}
    for target in TARGETS:
        tv = tv_grid(target, GRID, GRID, 3, sampler)
        linear = run_toy_schedule(target, named("linear"), 3, sampler).tv
        assert tv.min() < linear - 0.01, target
        best_sets[target] = tv <= tv.min() + 1e-12
    # the count plan is integer, so many (a, b) share the best plan: the two targets' best sets must not meet
    assert not np.any(best_sets["extremes"] & best_sets["two-or-three"])
    if sampler == "ancestral":
        assert best_sets["extremes"].sum() == 1 and best_sets["two-or-three"].sum() == 1


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_grid_sweep_equals_one_schedule_at_a_time(sampler):
    values = np.array([0.07, 0.5, 1.3, 4.0])
    for target in TARGETS:
        tv = tv_grid(target, values, values, 3, sampler)
        for (row, b), (column, a) in product(enumerate(values), enumerate(values)):
            assert tv[row, column] == pytest.approx(run_toy(target, a, b, 3, sampler).tv, abs=1e-13)


def test_stacked_alpha_grids_give_one_distribution_per_row():
    alpha = np.stack([named("linear").on_grid(4), named("sine").on_grid(4)])
    stacked = generated_probabilities("two-or-three", alpha, "ancestral")
    assert stacked.shape == (2, 32)
    assert stacked[1].tolist() == pytest.approx(list(toy_distribution("two-or-three", alpha[1], "ancestral").values()))


def test_run_toy_reports_its_inputs_and_named_schedules_without_a_b():
    result = run_toy("extremes", 0.5, 0.3, 3, "ancestral")
    assert (result.target, result.sampler, result.steps, result.a, result.b) == ("extremes", "ancestral", 3, 0.5, 0.3)
    sine = run_toy_schedule("two-or-three", named("sine"), 3, "count")
    assert sine.schedule == "sine" and sine.a is None and sine.b is None


def test_run_toy_reports_the_metrics_of_its_own_distribution():
    result = run_toy("two-or-three", 0.7, 0.4, 4, "count")
    metrics = toy_metrics("two-or-three", result.distribution)
    assert (result.tv, result.kl, result.support_mass) == (metrics.tv, metrics.kl, metrics.support_mass)
    assert 0 < result.tv < 1


@pytest.mark.parametrize(
    "call,field,allowed",
    [
        (lambda: run_toy("uniform", 1, 1, 3, "ancestral"), "target", "extremes, two-or-three"),
        (lambda: run_toy("extremes", 1, 1, 3, "greedy"), "sampler", "ancestral, count"),
        (lambda: run_toy("extremes", 0, 1, 3, "count"), "a", "> 0"),
        (lambda: run_toy("extremes", 1, 1, 0, "count"), "steps", ">= 1"),
        (lambda: toy_distribution("extremes", np.array([0.1, 1.0]), "count"), "alpha_grid", "alpha(0) = 0"),
        (lambda: toy_metrics("extremes", {"aaaa": 1.0}), "distribution", "a and b"),
        (lambda: toy_monte_carlo("extremes", np.array([0.0, 1.0]), "count", 0, 1), "n", ">= 1"),
    ],
)
def test_bad_input_names_the_field_and_the_allowed_values(call, field, allowed):
    with pytest.raises(InvalidInput) as error:
        call()
    assert error.value.field == field and allowed in str(error.value)


def test_fig4_is_a_png_and_the_same_bytes_each_time(tmp_path):
    from mdmtune.plots.toy import plot_toy_tv

    first = plot_toy_tv(tmp_path / "first.png", resolution=21).read_bytes()
    second = plot_toy_tv(tmp_path / "second.png", resolution=21).read_bytes()
    assert first.startswith(b"\x89PNG\r\n\x1a\n") and first == second
