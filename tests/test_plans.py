"""Claims of docs/math.md "From a schedule to a sampling plan", one test each."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdmtune.core.plans import ancestral_probabilities, block_count_plans, check_blocks, count_plan
from mdmtune.core.schedules import beta, named
from mdmtune.errors import InvalidInput


def llada_num_transfer_tokens(masked: int, steps: int) -> list[int]:
    """LLaDA's get_num_transfer_tokens, written from its description: base M // N, remainder to the first steps."""
    base, remainder = divmod(masked, steps)
    return [base + (1 if step < remainder else 0) for step in range(steps)]


def test_linear_count_plan_equals_llada_for_all_m_below_300_and_n_up_to_64():
    for steps in range(1, 65):
        alpha = named("linear").on_grid(steps)
        for masked in range(300):
            assert count_plan(alpha, masked).tolist() == llada_num_transfer_tokens(masked, steps), (masked, steps)


@given(
    a=st.floats(0.05, 5.0),
    b=st.floats(0.05, 5.0),
    steps=st.integers(1, 64),
    masked=st.integers(0, 500),
)
@settings(max_examples=300, deadline=None)
def test_count_plan_sums_to_m_and_stays_within_one_of_its_quota(a, b, steps, masked):
    alpha = beta(a, b).on_grid(steps)
    counts = count_plan(alpha, masked)
    increments = np.diff(alpha)
    quotas = masked * increments / increments.sum()
    assert counts.sum() == masked
    assert np.all(counts >= 0)
    assert np.all(np.abs(counts - quotas) < 1.0 + 1e-9)


def test_ties_go_to_the_earlier_step():
    alpha = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    assert count_plan(alpha, 2).tolist() == [1, 1, 0, 0]
    assert count_plan(np.array([0.0, 0.5, 1.0]), 3).tolist() == [2, 1]


def test_largest_remainder_beats_earliness():
    alpha = np.array([0.0, 0.1, 0.4, 1.0])
    # quotas for M = 3: 0.3, 0.9, 1.8 -> floors 0, 0, 1, remainder 2 to the fractions 0.9 and 0.8
    assert count_plan(alpha, 3).tolist() == [0, 1, 2]


def test_back_loaded_schedule_puts_most_tokens_last():
    counts = count_plan(beta(1.0, 0.2).on_grid(8), 40)
    assert counts[-1] == counts.max() and counts[-1] > 40 / 8


def test_stacked_plans_equal_row_by_row_plans():
    schedules = [beta(0.3, 2.0), named("linear"), beta(1.0, 0.2)]
    stacked = count_plan(np.stack([s.on_grid(8) for s in schedules]), 37)
    for row, schedule in enumerate(schedules):
        assert stacked[row].tolist() == count_plan(schedule.on_grid(8), 37).tolist()


def test_blocks_split_steps_evenly_and_plan_each_block_on_its_own_mask():
    plans = block_count_plans(named("linear"), 8, [6, 3])
    assert [p.tolist() for p in plans] == [llada_num_transfer_tokens(6, 4), llada_num_transfer_tokens(3, 4)]


@pytest.mark.parametrize(
    ("gen_length", "block_length", "steps", "field"),
    [(32, 5, 8, "block_length"), (32, 8, 6, "steps"), (32, 0, 8, "block_length"), (0, 8, 8, "gen_length")],
)
def test_block_rules_are_llada_rules(gen_length, block_length, steps, field):
    with pytest.raises(InvalidInput) as error:
        check_blocks(gen_length, block_length, steps)
    assert error.value.field == field


def test_block_count_matches_llada():
    assert check_blocks(32, 8, 8) == 4


@given(a=st.floats(0.05, 5.0), b=st.floats(0.05, 5.0), steps=st.integers(1, 40))
@settings(max_examples=100, deadline=None)
def test_ancestral_survival_equals_one_minus_alpha(a, b, steps):
    alpha = beta(a, b).on_grid(steps)
    probabilities = ancestral_probabilities(alpha)
    survival = np.concatenate([[1.0], np.cumprod(1.0 - probabilities)])
    assert probabilities[-1] == 1.0
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    assert np.allclose(survival[:-1], 1.0 - alpha[:-1], atol=1e-9)
    assert survival[-1] == 0.0


def test_ancestral_linear_is_one_over_remaining_steps():
    assert np.allclose(ancestral_probabilities(named("linear").on_grid(5)), [1 / 5, 1 / 4, 1 / 3, 1 / 2, 1])


@pytest.mark.parametrize("masked", [-1, 2.0, None])
def test_bad_masked_count_is_refused(masked):
    with pytest.raises(InvalidInput) as error:
        count_plan(named("linear").on_grid(4), masked)
    assert error.value.field == "masked"


def test_decreasing_alpha_is_refused():
    with pytest.raises(InvalidInput):
        count_plan(np.array([0.0, 0.6, 0.4, 1.0]), 4)
