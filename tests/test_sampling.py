"""The batched samplers (mdmtune.sampling) on a real tiny reference MDM: every mode, plans, seeds, NFEs, errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from _sampling_support import Recording, native_denoiser

from mdmtune.core.plans import ancestral_probabilities, block_count_plans, count_plan
from mdmtune.core.schedules import alpha_grids, beta, named
from mdmtune.errors import InvalidInput
from mdmtune.models.loading import load_denoiser
from mdmtune.sampling import REMASKINGS, SamplerSettings, sample

PROMPT, GEN = 6, 12
SCHEDULES = [named("linear"), named("cos2"), beta(1.0, 0.2), beta(0.3, 2.0)]


@pytest.fixture(scope="module")
def denoiser(tmp_path_factory):
    torch.set_num_threads(1)
    return native_denoiser(tmp_path_factory.mktemp("native"))


def completion_ids(denoiser, rows: int, seed: int = 0) -> torch.Tensor:
    """Random prompts of PROMPT real characters followed by GEN mask tokens."""
    generator = torch.Generator().manual_seed(seed)
    prompt = torch.randint(3, denoiser.vocab_size, (rows, PROMPT), generator=generator)
    return torch.cat([prompt, torch.full((rows, GEN), denoiser.mask_token_id)], dim=1)


def infill_ids(denoiser, rows: int, seed: int = 0) -> torch.Tensor:
    """Random text with masks scattered anywhere, a different number per row."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, denoiser.vocab_size, (rows, PROMPT + GEN), generator=generator)
    for row in range(rows):
        holes = torch.randperm(ids.shape[1], generator=generator)[: 4 + 2 * row]
        ids[row, holes] = denoiser.mask_token_id
    return ids


def run(denoiser, ids, settings, steps=8, schedules=None, seeds=None, infill=False, **kwargs):
    rows = ids.shape[0]
    schedules = schedules or [SCHEDULES[r % len(SCHEDULES)] for r in range(rows)]
    seeds = list(range(100, 100 + rows)) if seeds is None else seeds
    region = None if infill else (PROMPT, GEN)
    return sample(denoiser, ids, alpha_grids(schedules, steps), settings, seeds, gen_region=region, **kwargs)


MODES = [
    *[SamplerSettings("count", remasking, temperature) for remasking in REMASKINGS for temperature in (0.0, 1.0)],
    SamplerSettings("count", "low_confidence", 0.7, block_length=4),
    SamplerSettings("count", "margin", 0.0, block_length=6),
    SamplerSettings("ancestral", temperature=0.0),
    SamplerSettings("ancestral", temperature=1.0),
    SamplerSettings("ancestral", temperature=1.0, block_length=4),
]

INFILL_MODES = [SamplerSettings("count", r, 1.0) for r in REMASKINGS] + [SamplerSettings("ancestral", temperature=1.0)]
RANDOM_MODES = [
    SamplerSettings("count", "random", 1.0),
    SamplerSettings("ancestral", temperature=1.0),
    SamplerSettings("count", "low_confidence", 1.0, block_length=4),
]
BATCH_MODES = [
    SamplerSettings("count", "random", 1.0),
    SamplerSettings("count", "entropy", 0.8),
    SamplerSettings("ancestral", temperature=1.0),
]


@pytest.mark.parametrize("settings", MODES, ids=str)
def test_every_mode_fills_every_mask_with_a_real_token_and_keeps_the_prompt(denoiser, settings):
    ids = completion_ids(denoiser, rows=4)
    out = run(denoiser, ids, settings, steps=12 if settings.block_length == 4 else 8)
    generated = out.ids[:, PROMPT:]
    assert not bool((generated == denoiser.mask_token_id).any())
    assert torch.equal(out.ids[:, :PROMPT], ids[:, :PROMPT])
    assert out.committed_per_step.sum(axis=1).tolist() == [GEN] * 4


@pytest.mark.parametrize(
    "settings",
    INFILL_MODES,
    ids=str,
)
def test_infill_generates_masks_anywhere_and_nothing_else(denoiser, settings):
    ids = infill_ids(denoiser, rows=3)
    out = run(denoiser, ids, settings, infill=True)
    was_masked = ids == denoiser.mask_token_id
    assert not bool((out.ids == denoiser.mask_token_id).any())
    assert torch.equal(out.ids[~was_masked], ids[~was_masked])
    assert out.committed_per_step.sum(axis=1).tolist() == was_masked.sum(dim=1).tolist()


def _committed_between_calls(recording: Recording, mask_id: int, rows: int) -> list[dict[int, int]]:
    """From the recorded inputs: {row: tokens unmasked} between consecutive model calls (full-batch calls only)."""
    masked = [(ids == mask_id).sum(dim=1) for ids, _ in recording.inputs]
    return [{r: int(before[r] - after[r]) for r in range(rows)} for before, after in itertools.pairwise(masked)]


def test_count_sampler_commits_exactly_the_plan_of_each_row_at_each_step(denoiser):
    """Checked from what the model was shown, not from the sampler's own report: K_k of mdmtune.core.plans per row."""
    steps = 12
    recording = Recording(denoiser)
    ids = completion_ids(denoiser, rows=2)
    schedules = [beta(0.7, 0.7), beta(0.7, 0.7)]  # every step commits in both rows, so every call is the full batch
    out = run(recording, ids, SamplerSettings(), steps=steps, schedules=schedules)
    plan = count_plan(schedules[0].on_grid(steps), GEN)
    assert np.all(plan > 0)
    seen = _committed_between_calls(recording, denoiser.mask_token_id, 2)
    assert [step[0] for step in seen] == plan[:-1].tolist()
    assert out.committed_per_step.tolist() == [plan.tolist(), plan.tolist()]


def test_block_plans_are_mdmtune_plans_block_count_plans(denoiser):
    steps, block = 12, 4
    ids = completion_ids(denoiser, rows=4)
    out = run(denoiser, ids, SamplerSettings(block_length=block), steps=steps)
    for row in range(4):
        expected = block_count_plans(SCHEDULES[row], steps, [block] * (GEN // block))
        assert out.committed_per_step[row].tolist() == np.concatenate(expected).tolist()


def test_blocks_fill_left_to_right(denoiser):
    """Semi-AR: no position of block b+1 is committed while block b still has masks."""
    recording = Recording(denoiser)
    ids = completion_ids(denoiser, rows=2)
    run(recording, ids, SamplerSettings(block_length=4), steps=6, schedules=[named("linear")] * 2)
    for seen, _ in recording.inputs:
        masks = (seen[:, PROMPT:] == denoiser.mask_token_id).reshape(2, 3, 4)
        open_blocks = masks.any(dim=2).int()
        assert bool((open_blocks[:, 1:] >= open_blocks[:, :-1]).all())


def test_steps_that_commit_nothing_in_any_row_skip_the_model(denoiser):
    """16 steps for 12 masks under linear: 4 steps commit nothing, so 12 model calls, not 16."""
    recording = Recording(denoiser)
    ids = completion_ids(denoiser, rows=3)
    out = run(recording, ids, SamplerSettings(), steps=16, schedules=[named("linear")] * 3)
    plan = count_plan(named("linear").on_grid(16), GEN)
    assert (plan == 0).sum() == 4
    assert out.nfe == len(recording.inputs) == 12
    assert out.row_nfe.tolist() == [12, 12, 12]


def test_only_rows_that_commit_are_sent_to_the_model_and_nfe_counts_calls(denoiser):
    recording = Recording(denoiser)
    ids = completion_ids(denoiser, rows=2)
    schedules = [beta(1.0, 0.2), beta(0.2, 1.0)]  # front-loaded vs back-loaded: their zero steps differ
    out = run(recording, ids, SamplerSettings(), steps=32, schedules=schedules)
    active = out.committed_per_step > 0
    assert out.nfe == len(recording.inputs) == int(active.any(axis=0).sum())
    assert [seen.shape[0] for seen, _ in recording.inputs] == active.sum(axis=0)[active.any(axis=0)].tolist()
    assert out.row_nfe.tolist() == active.sum(axis=1).tolist()
    assert out.nfe < 32


def test_ancestral_skips_steps_in_which_nothing_unmasks(denoiser):
    recording = Recording(denoiser)
    ids = completion_ids(denoiser, rows=2)
    out = run(recording, ids, SamplerSettings("ancestral", temperature=1.0), steps=64)
    active = out.committed_per_step > 0
    assert out.nfe == len(recording.inputs) == int(active.any(axis=0).sum()) < 64
    assert out.committed_per_step.sum() == 2 * GEN


def test_ancestral_unmasks_each_token_with_the_plan_probability(denoiser):
    """After step 0 a token is unmasked with probability alpha(t_1): the mean over 96 x 12 tokens is within 4 sigma."""
    rows, steps = 96, 4
    schedule = beta(0.6, 1.5)
    ids = completion_ids(denoiser, rows=rows)
    out = run(denoiser, ids, SamplerSettings("ancestral"), steps=steps, schedules=[schedule] * rows)
    p = ancestral_probabilities(schedule.on_grid(steps))[0]
    fraction = out.committed_per_step[:, 0].sum() / (rows * GEN)
    assert abs(fraction - p) < 4 * np.sqrt(p * (1 - p) / (rows * GEN))


@pytest.mark.parametrize(
    "settings",
    [
        SamplerSettings("count", "random", 1.0),
        SamplerSettings("ancestral", temperature=1.0),
        SamplerSettings("count", "low_confidence", 1.0, block_length=4),
    ],
    ids=str,
)
def test_same_seed_same_output_other_seed_other_output(denoiser, settings):
    ids = completion_ids(denoiser, rows=4)
    first = run(denoiser, ids, settings, steps=12, seeds=[1, 2, 3, 4])
    again = run(denoiser, ids, settings, steps=12, seeds=[1, 2, 3, 4])
    other = run(denoiser, ids, settings, steps=12, seeds=[5, 6, 7, 8])
    assert torch.equal(first.ids, again.ids)
    assert not torch.equal(first.ids, other.ids)


@pytest.mark.parametrize(
    "settings",
    [
        SamplerSettings("count", "random", 1.0),
        SamplerSettings("count", "entropy", 0.8),
        SamplerSettings("ancestral", temperature=1.0),
    ],
    ids=str,
)
def test_a_rows_output_does_not_depend_on_the_other_rows_of_its_batch(denoiser, settings):
    """Row (prompt, schedule, seed) sampled alone equals the same row inside a batch of other prompts/schedules."""
    ids = completion_ids(denoiser, rows=5, seed=3)
    alone = run(denoiser, ids[:1], settings, schedules=[SCHEDULES[2]], seeds=[42])
    crowd = run(denoiser, ids, settings, schedules=[SCHEDULES[2], *SCHEDULES], seeds=[42, 1, 2, 3, 4])
    assert torch.equal(crowd.ids[0], alone.ids[0])
    assert crowd.committed_per_step[0].tolist() == alone.committed_per_step[0].tolist()


def test_temperature_zero_is_deterministic_whatever_the_seed(denoiser):
    ids = completion_ids(denoiser, rows=3)
    first = run(denoiser, ids, SamplerSettings(), seeds=[1, 2, 3])
    other = run(denoiser, ids, SamplerSettings(), seeds=[7, 8, 9])
    assert torch.equal(first.ids, other.ids)


@pytest.mark.parametrize("remasking", ["low_confidence", "margin", "entropy"])
def test_first_step_commits_the_top_scoring_positions_with_their_argmax_tokens(denoiser, remasking):
    """Step 0 recomputed by hand from the model's logits: scores in float64 numpy, top-K positions, argmax tokens."""
    recording = Recording(denoiser)
    ids = completion_ids(denoiser, rows=1)
    run(recording, ids, SamplerSettings("count", remasking), steps=4, schedules=[named("cos2")])
    k = count_plan(named("cos2").on_grid(4), GEN)[0]
    logits = denoiser.logits(ids)[0, PROMPT:].double().numpy()
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    choice = logits.copy()
    choice[:, denoiser.mask_token_id] = -np.inf
    tokens = choice.argmax(axis=1)
    if remasking == "low_confidence":
        score = probs[np.arange(GEN), tokens]
    elif remasking == "margin":
        top = np.sort(probs, axis=1)
        score = top[:, -1] - top[:, -2]
    else:
        score = (probs * np.log(probs)).sum(axis=1)
    expected = set(np.argsort(-score, kind="stable")[:k].tolist())
    after = recording.inputs[1][0][0, PROMPT:]
    committed = set(torch.nonzero(after != denoiser.mask_token_id).flatten().tolist())
    assert committed == expected
    assert [int(after[j]) for j in sorted(committed)] == [int(tokens[j]) for j in sorted(committed)]


def test_left_padded_rows_keep_their_padding_and_the_model_sees_the_attention_mask(denoiser):
    recording = Recording(denoiser)
    ids = completion_ids(denoiser, rows=2)
    ids[0, :3] = denoiser.pad_token_id
    attention = torch.ones_like(ids)
    attention[0, :3] = 0
    out = run(recording, ids, SamplerSettings("count", "random", 1.0), attention_mask=attention)
    assert torch.equal(out.ids[0, :3], ids[0, :3])
    assert all(torch.equal(mask, attention[: mask.shape[0]]) or mask.shape[0] < 2 for _, mask in recording.inputs)
    assert all(mask is not None for _, mask in recording.inputs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"settings": SamplerSettings(block_length=5)}, "block_length"),  # 5 does not divide 12
        ({"settings": SamplerSettings(block_length=4), "steps": 8}, "steps"),  # 3 blocks do not divide 8 steps
        ({"settings": SamplerSettings(block_length=4), "infill": True}, "block_length"),  # infill has no blocks
    ],
)
def test_blocks_that_do_not_fit_are_refused_by_name(denoiser, kwargs, field):
    settings = kwargs.pop("settings")
    ids = infill_ids(denoiser, 2) if kwargs.get("infill") else completion_ids(denoiser, 2)
    with pytest.raises(InvalidInput) as error:
        run(denoiser, ids, settings, **kwargs)
    assert error.value.field == field


def test_bad_inputs_are_refused_by_name(denoiser):
    ids = completion_ids(denoiser, rows=2)
    alphas = alpha_grids([named("linear")] * 2, 8)
    region = (PROMPT, GEN)
    cases = [
        (lambda: sample(denoiser, ids, alphas[:1], SamplerSettings(), [1, 2], region), "alphas"),
        (lambda: sample(denoiser, ids, alphas, SamplerSettings(), [1], region), "seeds"),
        (lambda: sample(denoiser, ids, alphas, SamplerSettings(), [1, -2], region), "seeds"),
        (lambda: sample(denoiser, ids, alphas, SamplerSettings(), [1, 2], (PROMPT + 1, GEN - 1)), "ids"),
        (lambda: sample(denoiser, ids, alphas, SamplerSettings(), [1, 2], (PROMPT, GEN + 1)), "gen_region"),
        (lambda: sample(denoiser, ids.float(), alphas, SamplerSettings(), [1, 2], region), "ids"),
        (lambda: sample(denoiser, ids + 100, alphas, SamplerSettings(), [1, 2], region), "ids"),
        (lambda: SamplerSettings(sampler="greedy"), "sampler"),
        (lambda: SamplerSettings(remasking="lowest"), "remasking"),
        (lambda: SamplerSettings(temperature=-1.0), "temperature"),
        (lambda: SamplerSettings(temperature=float("nan")), "temperature"),
        (lambda: SamplerSettings(block_length=0), "block_length"),
    ]
    for call, field in cases:
        with pytest.raises(InvalidInput) as error:
            call()
        assert error.value.field == field


def test_more_steps_than_masked_tokens_is_allowed(denoiser):
    """N > M is fine: some steps commit nothing (and cost nothing)."""
    ids = infill_ids(denoiser, rows=1)  # 4 masks
    out = run(denoiser, ids, SamplerSettings(), steps=10, infill=True, schedules=[named("linear")])
    assert out.nfe == 4
    assert not bool((out.ids == denoiser.mask_token_id).any())


class _Bfloat16Logits(Recording):
    """A denoiser whose logits come back in bf16 (as a raw bf16 model's would)."""

    def logits(self, ids, attention_mask=None):
        return super().logits(ids, attention_mask).bfloat16()


def test_a_bfloat16_model_samples_every_mode(tmp_path):
    """Weights in bf16 (the loader's GPU default) and bf16 logits: choices are made in float64 all the same."""
    native_denoiser(tmp_path / "model")
    bf16 = _Bfloat16Logits(load_denoiser(tmp_path / "model", device="cpu", dtype="bfloat16"))
    assert bf16.inner.dtype == torch.bfloat16
    ids = completion_ids(bf16, rows=3)
    modes = (SamplerSettings(), SamplerSettings("count", "margin", 1.0), SamplerSettings("ancestral", temperature=1.0))
    for settings in modes:
        out = run(bf16, ids, settings)
        assert not bool((out.ids == bf16.mask_token_id).any())
