"""The one sampling loop (mdmtune.sampling.loop) with a rule plugged in from outside, the refusal of a schedule that
an adaptive decoder would not read, and the one place count plans per row and block come from (plans.count_plans)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _sampling_support import native_denoiser

from mdmtune.core.plans import count_plan, count_plans
from mdmtune.core.schedules import alpha_grids, beta, named
from mdmtune.errors import InvalidInput
from mdmtune.sampling import SamplerSettings, sample
from mdmtune.sampling.layout import build_layout
from mdmtune.sampling.loop import Call, SamplingLoop

PROMPT, GEN, BLOCK = 5, 8, 4


@pytest.fixture(scope="module")
def denoiser(tmp_path_factory):
    torch.set_num_threads(1)
    return native_denoiser(tmp_path_factory.mktemp("native"))


def completion_ids(denoiser, rows: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(4)
    prompt = torch.randint(3, denoiser.vocab_size, (rows, PROMPT), generator=generator)
    ids = torch.cat([prompt, torch.full((rows, GEN), denoiser.mask_token_id)], dim=1)
    ids[1, PROMPT + 1] = 3  # row 1 has one position of its first block given
    ids[2, PROMPT : PROMPT + BLOCK] = 4  # row 2 has its first block given entirely
    return ids


class LeftmostFirst:
    """A rule written outside the package: every unfinished row commits its leftmost open position per call."""

    own_clock = True

    def __init__(self, columns: int) -> None:
        self.columns = columns

    def rows(self, loop: SamplingLoop, tick: int) -> np.ndarray | None:
        waiting = loop.unfinished()
        return None if waiting.size == 0 else waiting

    def select(self, call: Call) -> torch.Tensor:
        first = torch.full((call.rows.size,), call.candidates.shape[1], device=call.positions.device)
        first = first.scatter_reduce(0, call.local, call.positions, reduce="amin")
        return call.positions == first[call.local]


def leftmost_by_hand(denoiser, ids: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """The same decoding one row at a time: argmax (mask excluded) at the leftmost mask, one model call each."""
    out, calls = ids.clone(), []
    for row in range(ids.shape[0]):
        x = ids[row : row + 1].clone()
        masked = (x[0] == denoiser.mask_token_id).nonzero().flatten().tolist()
        for position in masked:
            logits = denoiser.logits(x).double()[0, position]
            logits[denoiser.mask_token_id] = -torch.inf
            x[0, position] = int(logits.argmax())
        out[row], calls = x[0], [*calls, len(masked)]
    return out, calls


def test_a_rule_plugged_in_from_outside_walks_blocks_and_counts_calls(denoiser):
    ids = completion_ids(denoiser, rows=3)
    settings = SamplerSettings(block_length=BLOCK)
    layout = build_layout(ids, denoiser.mask_token_id, (PROMPT, GEN), BLOCK, GEN)
    finished: list[tuple[int, int]] = []
    loop = SamplingLoop(denoiser, ids, settings, [1, 2, 3], layout, None, LeftmostFirst(GEN))
    out = loop.run(on_call=lambda done, rows: finished.append((done, rows)))
    expected, calls = leftmost_by_hand(denoiser, ids)
    assert torch.equal(out.ids, expected)
    assert out.row_nfe.tolist() == calls == [8, 7, 4]
    assert out.nfe == max(calls) == len(finished)
    assert finished[-1] == (3, 3) and finished[3] == (1, 3)  # row 2 leaves after its 4 calls
    committed = np.zeros((3, GEN), dtype=np.int64)
    for row, n in enumerate(calls):
        committed[row, :n] = 1
    assert np.array_equal(out.committed_per_step, committed)
    assert loop.open.sum() == 0 and loop.block.tolist() == [2, 2, 2]


@pytest.mark.parametrize(("decoder", "field"), [("threshold", "threshold"), ("entropy", "entropy_bound")])
def test_sample_refuses_a_schedule_an_adaptive_decoder_would_not_read(denoiser, decoder, field):
    ids = completion_ids(denoiser, rows=3)
    settings = SamplerSettings(decoder=decoder, **{field: 0.5})
    with pytest.raises(InvalidInput) as error:
        sample(denoiser, ids, alpha_grids([named("linear")] * 3, 4), settings, [1, 2, 3], (PROMPT, GEN))
    assert error.value.field == "alphas"
    assert decoder in str(error.value)


def test_the_hybrid_decoder_still_takes_its_floor_schedule_through_sample(denoiser):
    ids = completion_ids(denoiser, rows=3)
    settings = SamplerSettings(decoder="hybrid", threshold=1.0)
    alphas = alpha_grids([named("linear")] * 3, 4)
    hybrid = sample(denoiser, ids, alphas, settings, [1, 2, 3], (PROMPT, GEN))
    counted = sample(denoiser, ids, alphas, SamplerSettings(), [1, 2, 3], (PROMPT, GEN))
    assert torch.equal(hybrid.ids, counted.ids) and hybrid.nfe == counted.nfe


def test_count_plans_is_count_plan_per_row_and_block():
    schedules = [named("linear"), beta(0.7, 0.7), named("linear"), beta(1.0, 0.2), named("cos2")]
    grid = alpha_grids(schedules, 6)
    masked = np.array([[5, 0, 3], [5, 7, 7], [1, 5, 3], [6, 6, 2], [0, 0, 9]])
    plans = count_plans(grid, masked)
    assert plans.shape == (5, 3, 6)
    for row in range(5):
        for block in range(3):
            assert plans[row, block].tolist() == count_plan(grid[row], int(masked[row, block])).tolist()


@pytest.mark.parametrize("masked", [[[3, True]], [[3, -1]], [[3, 2.5]], [3, 2]])
def test_count_plans_refuses_a_bad_masked_table(masked):
    with pytest.raises(InvalidInput) as error:
        count_plans(alpha_grids([named("linear")], 4), masked)
    assert error.value.field == "masked"
