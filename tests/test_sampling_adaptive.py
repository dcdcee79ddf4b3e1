"""The adaptive decoders (mdmtune.sampling.adaptive) against loops written from their published rules.

- threshold: Fast-dLLM's `get_transfer_index` with a threshold inside its block loop (`generate` with threshold):
  top-k of the block's masked confidences, the first always kept, every other one kept when >= tau; a block is
  decoded until it holds no mask.
- entropy: the EB-sampler loop as its authors released it for LLaDA (`generate_with_eb_sampler`): entropies of the
  masked positions sorted ascending, k = #{j: cumsum_j - cummax_j <= gamma}, clamped to [1, masked].
The references run one record at a time at temperature 0, on the whole logits, in float64; the one convention they
share with mdmtune rather than with the originals is that the mask token is never the chosen token (as MDLM).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _sampling_support import Recording, native_denoiser

from mdmtune.core.schedules import alpha_grids, named
from mdmtune.errors import InvalidInput
from mdmtune.sampling import SamplerSettings, sample, sample_adaptive

PROMPT, GEN = 6, 12
EXACT = {"confidence_dtype": "float64"} if "confidence_dtype" in SamplerSettings.__dataclass_fields__ else {}
"""The references compute in float64; so does the decoder under test (where the softmax precision is a setting)."""


@pytest.fixture(scope="module")
def denoiser(tmp_path_factory):
    torch.set_num_threads(1)
    return native_denoiser(tmp_path_factory.mktemp("native"), seed=4)


def completion_ids(denoiser, rows: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    prompt = torch.randint(3, denoiser.vocab_size, (rows, PROMPT), generator=generator)
    return torch.cat([prompt, torch.full((rows, GEN), denoiser.mask_token_id)], dim=1)


def infill_ids(denoiser, rows: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, denoiser.vocab_size, (rows, PROMPT + GEN), generator=generator)
    for row in range(rows):
        holes = torch.randperm(ids.shape[1], generator=generator)[: 3 + 3 * row]
        ids[row, holes] = denoiser.mask_token_id
    return ids


def _chosen_and_probs(denoiser, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = denoiser.logits(x).double()
    probs = torch.softmax(logits, dim=-1)
    choice = logits.clone()
    choice[..., denoiser.mask_token_id] = -torch.inf
    return choice.argmax(dim=-1), probs


def fast_dllm_threshold(denoiser, ids: torch.Tensor, tau: float, block_length: int) -> tuple[torch.Tensor, int]:
    """One record, Fast-dLLM's block loop and threshold rule."""
    x, mask, nfe = ids.clone()[None], denoiser.mask_token_id, 0
    for block in range(GEN // block_length):
        end = PROMPT + (block + 1) * block_length
        while bool((x[0, PROMPT:end] == mask).any()):
            x0, probs = _chosen_and_probs(denoiser, x)
            nfe += 1
            mask_index = x == mask
            mask_index[:, end:] = False
            x0_p = probs.gather(-1, x0[..., None]).squeeze(-1)
            conf = torch.where(mask_index, x0_p, -torch.inf)
            k = int(mask_index.sum())
            _, select = torch.topk(conf[0], k=k)
            transfer = torch.zeros_like(mask_index)
            transfer[0, select] = True
            for j in range(1, k):
                if conf[0, select[j]] < tau:
                    transfer[0, select[j]] = False
            x[transfer] = x0[transfer]
    return x[0], nfe


def eb_sampler(denoiser, ids: torch.Tensor, gamma: float) -> tuple[torch.Tensor, int]:
    """One record, the EB-sampler loop (no blocks)."""
    x, mask, nfe = ids.clone()[None], denoiser.mask_token_id, 0
    while bool((x == mask).any()):
        x0, _ = _chosen_and_probs(denoiser, x)
        nfe += 1
        mask_index = x == mask
        logits = denoiser.logits(x).double()[mask_index]
        entropy = torch.distributions.Categorical(logits=logits).entropy()
        where = mask_index.nonzero(as_tuple=True)[1]
        order = torch.argsort(entropy)
        ordered = entropy[order]
        k = int(((torch.cumsum(ordered, 0) - torch.cummax(ordered, 0).values) <= gamma).sum())
        take = where[order[: max(1, min(k, len(where)))]]
        x[0, take] = x0[0, take]
    return x[0], nfe


def _first_call_stats(denoiser, ids: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Confidences and entropies of the masked positions at the first call: thresholds that commit several at once."""
    x0, probs = _chosen_and_probs(denoiser, ids)
    masked = ids == denoiser.mask_token_id
    conf = probs.gather(-1, x0[..., None]).squeeze(-1)[masked]
    entropy = -(torch.special.xlogy(probs, probs).sum(-1))[masked]
    return conf.numpy(), entropy.numpy()


def _adaptive(denoiser, ids, settings, seeds=None, infill=False, **kwargs):
    seeds = list(range(10, 10 + ids.shape[0])) if seeds is None else seeds
    return sample_adaptive(denoiser, ids, settings, seeds, None if infill else (PROMPT, GEN), **kwargs)


@pytest.mark.parametrize("quantile", [0.3, 0.6, 0.9])
@pytest.mark.parametrize("block_length", [GEN, 4])
def test_threshold_decoder_equals_fast_dllm_record_by_record(denoiser, quantile, block_length):
    ids = completion_ids(denoiser, rows=4, seed=1)
    tau = float(np.quantile(_first_call_stats(denoiser, ids)[0], quantile))
    settings = SamplerSettings(decoder="threshold", threshold=tau, block_length=block_length, **EXACT)
    out = _adaptive(denoiser, ids, settings)
    for row in range(4):
        expected, nfe = fast_dllm_threshold(denoiser, ids[row], tau, block_length)
        assert torch.equal(out.ids[row], expected)
        assert out.row_nfe[row] == nfe
    assert out.nfe == out.row_nfe.max()  # a finished row leaves; the batch is called while any row is left


@pytest.mark.parametrize("scale", [0.5, 2.0, 6.0])
def test_entropy_decoder_equals_the_eb_sampler_record_by_record(denoiser, scale):
    ids = infill_ids(denoiser, rows=4, seed=2)
    gamma = scale * float(np.median(_first_call_stats(denoiser, ids)[1]))
    out = _adaptive(denoiser, ids, SamplerSettings(decoder="entropy", entropy_bound=gamma, **EXACT), infill=True)
    calls = []
    for row in range(4):
        expected, nfe = eb_sampler(denoiser, ids[row], gamma)
        assert torch.equal(out.ids[row], expected)
        assert out.row_nfe[row] == nfe
        calls.append(nfe)
    assert out.committed_per_step.sum(axis=1).tolist() == (ids == denoiser.mask_token_id).sum(dim=1).tolist()
    if scale == 6.0:
        assert max(calls) < int((ids == denoiser.mask_token_id).sum(dim=1).max())  # several tokens per call


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_threshold_one_is_the_one_token_per_step_count_sampler_noise_included(denoiser, temperature):
    """tau = 1 commits only the most confident position per call: the count sampler's linear plan at N = M, and
    with the same noise streams the same draws, so the same outputs at temperature 1 too."""
    ids = completion_ids(denoiser, rows=3, seed=5)
    seeds = [7, 8, 9]
    adaptive = _adaptive(
        denoiser,
        ids,
        SamplerSettings(temperature=temperature, decoder="threshold", threshold=1.0),
        seeds=seeds,
        attention_mask=None,
    )
    alphas = alpha_grids([named("linear")] * 3, GEN)
    counted = sample(denoiser, ids, alphas, SamplerSettings(temperature=temperature), seeds, (PROMPT, GEN))
    assert torch.equal(adaptive.ids, counted.ids)
    assert adaptive.row_nfe.tolist() == counted.row_nfe.tolist() == [GEN] * 3


def test_entropy_bound_zero_is_the_count_sampler_with_entropy_remasking(denoiser):
    ids = completion_ids(denoiser, rows=2, seed=6)
    seeds = [3, 4]
    adaptive = _adaptive(
        denoiser, ids, SamplerSettings(temperature=1.0, decoder="entropy", entropy_bound=0.0), seeds=seeds
    )
    alphas = alpha_grids([named("linear")] * 2, GEN)
    counted = sample(denoiser, ids, alphas, SamplerSettings("count", "entropy", 1.0), seeds, (PROMPT, GEN))
    assert torch.equal(adaptive.ids, counted.ids)


def test_sample_dispatches_on_the_decoder(denoiser):
    ids = completion_ids(denoiser, rows=2)
    settings = SamplerSettings(decoder="threshold", threshold=0.2)
    direct = _adaptive(denoiser, ids, settings, seeds=[1, 2])
    dispatched = sample(denoiser, ids, None, settings, [1, 2], (PROMPT, GEN))
    assert torch.equal(direct.ids, dispatched.ids)


def test_a_rows_output_does_not_depend_on_its_batch_mates_and_seeds_matter(denoiser):
    ids = completion_ids(denoiser, rows=4, seed=3)
    tau = float(np.quantile(_first_call_stats(denoiser, ids)[0], 0.5))
    settings = SamplerSettings(temperature=1.0, decoder="threshold", threshold=tau, block_length=6)
    alone = _adaptive(denoiser, ids[:1], settings, seeds=[42])
    crowd = _adaptive(denoiser, ids, settings, seeds=[42, 1, 2, 3])
    again = _adaptive(denoiser, ids, settings, seeds=[42, 1, 2, 3])
    other = _adaptive(denoiser, ids, settings, seeds=[43, 5, 6, 7])
    assert torch.equal(crowd.ids[0], alone.ids[0])
    assert crowd.row_nfe[0] == alone.row_nfe[0]
    assert torch.equal(crowd.ids, again.ids)
    assert not torch.equal(crowd.ids, other.ids)


def test_temperature_zero_is_deterministic_whatever_the_seed(denoiser):
    ids = infill_ids(denoiser, rows=3)
    settings = SamplerSettings(decoder="entropy", entropy_bound=1.0)
    first = _adaptive(denoiser, ids, settings, seeds=[1, 2, 3], infill=True)
    other = _adaptive(denoiser, ids, settings, seeds=[7, 8, 9], infill=True)
    assert torch.equal(first.ids, other.ids)


def test_per_row_thresholds_equal_one_call_per_threshold(denoiser):
    """One batch can score many thresholds: row r under parameters[r] is row r sampled with that threshold alone."""
    ids = completion_ids(denoiser, rows=1, seed=8).repeat(3, 1)
    conf = _first_call_stats(denoiser, ids[:1])[0]
    taus = [float(np.quantile(conf, q)) for q in (0.2, 0.5, 0.95)]
    batch = _adaptive(
        denoiser, ids, SamplerSettings(decoder="threshold", threshold=0.5), seeds=[1, 1, 1], parameters=taus
    )
    for row, tau in enumerate(taus):
        one = _adaptive(denoiser, ids[:1], SamplerSettings(decoder="threshold", threshold=tau), seeds=[1])
        assert torch.equal(batch.ids[row], one.ids[0])
        assert batch.row_nfe[row] == one.row_nfe[0]
    assert batch.row_nfe[0] <= batch.row_nfe[1] <= batch.row_nfe[2]


def test_finished_rows_leave_the_batch(denoiser):
    """Rows with fewer masks finish first; later calls hold only the rows still decoding."""
    recording = Recording(denoiser)
    ids = infill_ids(denoiser, rows=3)  # 3, 6 and 9 masks
    out = _adaptive(recording, ids, SamplerSettings(decoder="threshold", threshold=1.0), infill=True)
    assert out.row_nfe.tolist() == [3, 6, 9]
    assert [seen.shape[0] for seen, _ in recording.inputs] == [3] * 3 + [2] * 3 + [1] * 3
    assert out.nfe == 9


def test_blocks_close_when_filled_and_fill_left_to_right(denoiser):
    recording = Recording(denoiser)
    ids = completion_ids(denoiser, rows=2)
    _adaptive(recording, ids, SamplerSettings(decoder="entropy", entropy_bound=3.0, block_length=4))
    for seen, _ in recording.inputs:
        masks = (seen[:, PROMPT:] == denoiser.mask_token_id).reshape(seen.shape[0], 3, 4)
        open_blocks = masks.any(dim=2).int()
        assert bool((open_blocks[:, 1:] >= open_blocks[:, :-1]).all())


@pytest.mark.parametrize(("max_steps", "block_length"), [(1, None), (3, None), (3, 4), (7, 4)])
def test_the_step_cap_bounds_every_rows_calls(denoiser, max_steps, block_length):
    """Each block gets max_steps // n_blocks calls; the last one commits what is left of the block."""
    ids = completion_ids(denoiser, rows=3)
    settings = SamplerSettings(decoder="threshold", threshold=1.0, max_steps=max_steps, block_length=block_length)
    out = _adaptive(denoiser, ids, settings)
    n_blocks = 1 if block_length is None else GEN // block_length
    assert out.row_nfe.tolist() == [n_blocks * (max_steps // n_blocks)] * 3
    assert not bool((out.ids == denoiser.mask_token_id).any())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"decoder": "greedy"}, "decoder"),
        ({"decoder": "threshold"}, "threshold"),
        ({"decoder": "entropy"}, "entropy_bound"),
        ({"decoder": "threshold", "threshold": 1.5}, "threshold"),
        ({"decoder": "threshold", "threshold": float("nan")}, "threshold"),
        ({"decoder": "entropy", "entropy_bound": -0.1}, "entropy_bound"),
        ({"decoder": "entropy", "entropy_bound": 1e9}, "entropy_bound"),
        ({"decoder": "threshold", "threshold": 0.9, "entropy_bound": 1.0}, "entropy_bound"),
        ({"decoder": "schedule", "threshold": 0.9}, "threshold"),
        ({"decoder": "threshold", "threshold": 0.9, "max_steps": 0}, "max_steps"),
        ({"max_steps": 4}, "max_steps"),
        ({"decoder": "threshold", "threshold": 0.9, "remasking": "random"}, "remasking"),
        ({"decoder": "entropy", "entropy_bound": 0.1, "sampler": "ancestral"}, "sampler"),
    ],
)
def test_bad_decoder_settings_are_refused_by_name(kwargs, field):
    with pytest.raises(InvalidInput) as error:
        SamplerSettings(**kwargs)
    assert error.value.field == field


def test_a_cap_below_the_block_count_is_refused(denoiser):
    settings = SamplerSettings(decoder="threshold", threshold=0.5, max_steps=2, block_length=4)
    with pytest.raises(InvalidInput) as error:
        _adaptive(denoiser, completion_ids(denoiser, rows=1), settings)
    assert error.value.field == "max_steps"


def test_continuous_batching_keeps_every_rows_output_and_fills_the_places_of_finished_rows(denoiser):
    """With max_batch, no call holds more rows than that, a finished row's place goes to the next waiting row, and
    every row's output and calls are those it has sampled alone (its noise is keyed by its own call index)."""
    ids = infill_ids(denoiser, rows=6, seed=9)  # 3, 6, ..., 18 masks: rows finish at different calls
    settings = SamplerSettings(temperature=1.0, decoder="threshold", threshold=1.0)
    seeds = [11, 12, 13, 14, 15, 16]
    recording = Recording(denoiser)
    finished: list[int] = []
    packed = _adaptive(
        recording, ids, settings, seeds=seeds, infill=True, max_batch=2, on_call=lambda d, n: finished.append(d)
    )
    alone = _adaptive(denoiser, ids, settings, seeds=seeds, infill=True)
    assert torch.equal(packed.ids, alone.ids)
    assert packed.row_nfe.tolist() == alone.row_nfe.tolist() == [3, 6, 9, 12, 15, 18]
    sizes = [seen.shape[0] for seen, _ in recording.inputs]
    assert max(sizes) == 2 and sum(sizes) == sum(packed.row_nfe)
    assert packed.nfe == len(sizes) == _slots_finish_time([3, 6, 9, 12, 15, 18], slots=2)
    assert finished[-1] == 6 and finished == sorted(finished)


def _slots_finish_time(needs: list[int], slots: int) -> int:
    """When the last of `needs` calls finishes, rows taking free slots in order (a row needs its calls in a row)."""
    free_at = [0] * slots
    for need in needs:
        start = min(free_at)
        free_at[free_at.index(start)] = start + need
    return max(free_at)
