"""The hybrid decoder (diffusers' BlockRefinementScheduler with a Beta plan) against a loop written from its rule.

The rule (diffusers 0.42 `BlockRefinementScheduler.step`, mask mode): at step k of a block with K_k the plan's count,
let H be the still-masked positions whose confidence is strictly above tau; commit H when |H| >= K_k, else the K_k
most confident. That is max(K_k, |H|) positions, the most confident ones. A block whose masks are gone is left (no
more calls). mdmtune's plan is the Beta count plan instead of diffusers' even split; a step whose floor is 0 with
tau = 1 makes no call (nothing can be above 1), as the count sampler skips its zero steps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _sampling_support import native_denoiser

from mdmtune.core.plans import block_count_plans
from mdmtune.core.schedules import alpha_grids, beta, named
from mdmtune.errors import InvalidInput
from mdmtune.sampling import SamplerSettings, sample, sample_adaptive, sample_hybrid

PROMPT, GEN = 6, 12
EXACT = {"confidence_dtype": "float64"}


@pytest.fixture(scope="module")
def denoiser(tmp_path_factory):
    torch.set_num_threads(1)
    return native_denoiser(tmp_path_factory.mktemp("native"), seed=4)


def completion_ids(denoiser, rows: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    prompt = torch.randint(3, denoiser.vocab_size, (rows, PROMPT), generator=generator)
    return torch.cat([prompt, torch.full((rows, GEN), denoiser.mask_token_id)], dim=1)


def _chosen_and_probs(denoiser, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = denoiser.logits(x).double()
    probs = torch.softmax(logits, dim=-1)
    choice = logits.clone()
    choice[..., denoiser.mask_token_id] = -torch.inf
    return choice.argmax(dim=-1), probs


def block_refinement(denoiser, ids, plan: np.ndarray, tau: float, block_length: int) -> tuple[torch.Tensor, int]:
    """One record at temperature 0: plan [n_blocks, steps per block] of floor counts, diffusers' commit rule."""
    x, mask, nfe = ids.clone()[None], denoiser.mask_token_id, 0
    for block in range(GEN // block_length):
        start, end = PROMPT + block * block_length, PROMPT + (block + 1) * block_length
        for wanted in plan[block]:
            masked = torch.zeros_like(x, dtype=torch.bool)
            masked[:, start:end] = x[:, start:end] == mask
            if not bool(masked.any()) or (wanted == 0 and tau >= 1.0):
                continue
            x0, probs = _chosen_and_probs(denoiser, x)
            nfe += 1
            conf = torch.where(masked, probs.gather(-1, x0[..., None]).squeeze(-1), -torch.inf)
            high = conf[0] > tau
            transfer = torch.zeros_like(masked)
            if int(high.sum()) >= wanted:
                transfer[0] = high
            else:
                k = min(int(wanted), int(masked.sum()))
                transfer[0, torch.topk(conf[0], k=k).indices] = True
            x[transfer] = x0[transfer]
    return x[0], nfe


def _hybrid(denoiser, ids, schedule, steps, settings, seeds=None, **kwargs):
    seeds = list(range(10, 10 + ids.shape[0])) if seeds is None else seeds
    alphas = alpha_grids([schedule] * ids.shape[0], steps)
    return sample_hybrid(denoiser, ids, alphas, settings, seeds, (PROMPT, GEN), **kwargs)


def _first_call_confidences(denoiser, ids: torch.Tensor) -> np.ndarray:
    x0, probs = _chosen_and_probs(denoiser, ids)
    return probs.gather(-1, x0[..., None]).squeeze(-1)[ids == denoiser.mask_token_id].numpy()


SKEWED = beta(0.3, 2.5)
"""A Beta plan with zero steps at 12 steps over 12 positions (checked below), so the floor-0 rule is exercised."""


def _plan(schedule, steps: int, size: int) -> np.ndarray:
    return np.array(block_count_plans(schedule, steps, [size] * (GEN // size)))


def test_the_skewed_plan_has_zero_steps():
    assert (_plan(SKEWED, 12, GEN) == 0).any()


@pytest.mark.parametrize("quantile", [0.2, 0.5, 0.9])
@pytest.mark.parametrize(("schedule", "steps", "block_length"), [(SKEWED, 12, None), (named("cos2"), 6, 4)])
def test_hybrid_equals_the_block_refinement_rule_record_by_record(denoiser, quantile, schedule, steps, block_length):
    ids = completion_ids(denoiser, rows=4, seed=1)
    tau = float(np.quantile(_first_call_confidences(denoiser, ids), quantile))
    settings = SamplerSettings(decoder="hybrid", threshold=tau, block_length=block_length, **EXACT)
    out = _hybrid(denoiser, ids, schedule, steps, settings)
    size = GEN if block_length is None else block_length
    plan = _plan(schedule, steps, size)
    for row in range(4):
        expected, nfe = block_refinement(denoiser, ids[row], plan, tau, size)
        assert torch.equal(out.ids[row], expected)
        assert out.row_nfe[row] == nfe
    assert out.committed_per_step.sum(axis=1).tolist() == [GEN] * 4


@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize(("schedule", "steps", "block_length"), [(SKEWED, 12, None), (named("cos2"), 6, 4)])
def test_tau_one_is_the_count_sampler_token_for_token_and_call_for_call(
    denoiser, temperature, schedule, steps, block_length
):
    ids = completion_ids(denoiser, rows=3, seed=5)
    seeds = [7, 8, 9]
    alphas = alpha_grids([schedule] * 3, steps)
    hybrid = sample(
        denoiser,
        ids,
        alphas,
        SamplerSettings(temperature=temperature, block_length=block_length, decoder="hybrid", threshold=1.0),
        seeds,
        (PROMPT, GEN),
    )
    counted = sample(
        denoiser, ids, alphas, SamplerSettings(temperature=temperature, block_length=block_length), seeds, (PROMPT, GEN)
    )
    assert torch.equal(hybrid.ids, counted.ids)
    assert hybrid.nfe == counted.nfe
    assert hybrid.row_nfe.tolist() == counted.row_nfe.tolist()
    assert hybrid.committed_per_step.tolist() == counted.committed_per_step.tolist()


@pytest.mark.parametrize("quantile", [0.3, 0.6, 0.9])
@pytest.mark.parametrize("block_length", [None, 4])
def test_a_floor_of_one_per_step_is_the_threshold_decoder(denoiser, quantile, block_length):
    """The linear plan at N = M commits 1 per step: the floor is Fast-dLLM's 'at least the most confident one'.
    The two coincide where no confidence equals tau exactly (diffusers commits > tau, Fast-dLLM >= tau): tau is put
    between two observed confidences."""
    ids = completion_ids(denoiser, rows=4, seed=3)
    seen = np.sort(_first_call_confidences(denoiser, ids))
    at = int(quantile * (seen.size - 1))
    tau = float((seen[at] + seen[at + 1]) / 2)
    size = GEN if block_length is None else block_length
    hybrid = _hybrid(
        denoiser,
        ids,
        named("linear"),
        GEN,
        SamplerSettings(decoder="hybrid", threshold=tau, block_length=size, **EXACT),
    )
    assert (_plan(named("linear"), GEN, size) == 1).all()
    threshold = sample_adaptive(
        denoiser,
        ids,
        SamplerSettings(decoder="threshold", threshold=tau, block_length=size, **EXACT),
        list(range(10, 14)),
        (PROMPT, GEN),
    )
    assert torch.equal(hybrid.ids, threshold.ids)
    assert hybrid.row_nfe.tolist() == threshold.row_nfe.tolist()


def test_a_block_that_finishes_early_costs_fewer_calls(denoiser):
    """tau = 0 commits every masked position of the block at its first call: one call per block, whatever N."""
    ids = completion_ids(denoiser, rows=2, seed=4)
    settings = SamplerSettings(decoder="hybrid", threshold=0.0, block_length=4)
    out = _hybrid(denoiser, ids, named("cos2"), 12, settings)
    assert out.row_nfe.tolist() == [3, 3]  # 3 blocks, the other 3 steps of each cost nothing
    assert out.nfe == 3
    assert out.committed_per_step.reshape(2, 3, 4)[:, :, 0].tolist() == [[4, 4, 4]] * 2
    counted = sample(
        denoiser, ids, alpha_grids([named("cos2")] * 2, 12), SamplerSettings(block_length=4), [10, 11], (PROMPT, GEN)
    )
    assert counted.row_nfe.tolist() == [12, 12]


def test_rows_with_different_thresholds_are_their_own_runs(denoiser):
    ids = completion_ids(denoiser, rows=3, seed=6)
    taus = [0.0, 0.5, 1.0]
    settings = SamplerSettings(decoder="hybrid", threshold=0.5)
    together = _hybrid(denoiser, ids, named("cos2"), 6, settings, thresholds=taus)
    for row, tau in enumerate(taus):
        alone = _hybrid(denoiser, ids[row : row + 1], named("cos2"), 6, settings, seeds=[10 + row], thresholds=[tau])
        assert torch.equal(together.ids[row], alone.ids[0])
        assert together.row_nfe[row] == alone.row_nfe[0]
    assert together.row_nfe[0] == 1 and together.row_nfe[2] == 6


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"decoder": "hybrid"}, "threshold"),
        ({"decoder": "hybrid", "threshold": 1.5}, "threshold"),
        ({"decoder": "hybrid", "threshold": -0.1}, "threshold"),
        ({"decoder": "hybrid", "threshold": float("nan")}, "threshold"),
        ({"decoder": "hybrid", "threshold": 0.9, "entropy_bound": 1.0}, "entropy_bound"),
        ({"decoder": "hybrid", "threshold": 0.9, "max_steps": 8}, "max_steps"),
        ({"decoder": "hybrid", "threshold": 0.9, "remasking": "margin"}, "remasking"),
        ({"decoder": "hybrid", "threshold": 0.9, "sampler": "ancestral"}, "sampler"),
    ],
)
def test_bad_hybrid_settings_are_refused_by_name(kwargs, field):
    with pytest.raises(InvalidInput) as error:
        SamplerSettings(**kwargs)
    assert error.value.field == field


def test_bad_per_row_thresholds_are_refused_by_name(denoiser):
    ids = completion_ids(denoiser, rows=2)
    settings = SamplerSettings(decoder="hybrid", threshold=0.5)
    for bad in ([0.5], [0.5, 1.2], [float("nan"), 0.5]):
        with pytest.raises(InvalidInput) as error:
            _hybrid(denoiser, ids, named("cos2"), 6, settings, thresholds=bad)
        assert error.value.field == "threshold"
    with pytest.raises(InvalidInput) as error:
        sample_hybrid(denoiser, ids, alpha_grids([named("cos2")] * 2, 6), SamplerSettings(), [1, 2], (PROMPT, GEN))
    assert error.value.field == "decoder"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"decoder": "hybrid"}, "threshold"),
        ({"decoder": "hybrid", "threshold": 2.0}, "threshold"),
        ({"decoder": "hybrid", "threshold": 0.9, "entropy_bound": 0.5}, "entropy_bound"),
        ({"decoder": "hybrid", "threshold": 0.9, "objective": "frontier"}, "decoder"),
    ],
)
def test_a_tune_job_refuses_bad_hybrid_fields_by_name(kwargs, field):
    from mdmtune.tuning.spec import TuneSpec

    with pytest.raises(InvalidInput) as error:
        TuneSpec(**{"objective": "quality", "metric": "sudoku", "steps": 4, **kwargs})
    assert error.value.field == field
