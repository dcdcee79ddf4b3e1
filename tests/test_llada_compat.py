"""With the linear schedule, temperature 0 and low_confidence remasking, the count sampler is LLaDA's generate().

The reference below is written from LLaDA's published algorithm (ML-GSAI/LLaDA, generate.py): per block,
get_num_transfer_tokens gives base = M // steps with the remainder on the first steps; each step runs the model on
the whole batch (with CFG: the prompt-masked batch too), takes the argmax token, scores it by its softmax
probability (float64 before June 2025, the model's dtype since), hides everything after the
current block and commits the top-k of each row. Our sampler differs on purpose in two places, neither of which
can change a token here: it never writes the mask token (the fixture's model never prefers it, and the test checks
that the reference never wrote it either), and it skips the model at steps that commit nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from mdmtune.core.schedules import alpha_grids, named
from mdmtune.sampling import SamplerSettings, sample

MASK_ID = 4
VOCAB = 40


class BertDenoiser:
    """The Denoiser protocol over an in-memory BertForMaskedLM (no codec needed by the sampler)."""

    def __init__(self, model: BertForMaskedLM) -> None:
        self.model = model
        self.mask_token_id = MASK_ID
        self.pad_token_id = 0
        self.vocab_size = VOCAB
        self.device = torch.device("cpu")
        self.codec = None
        self.calls = 0

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        with torch.inference_mode():
            return self.model(input_ids=ids, attention_mask=attention_mask).logits.float()


def tiny_bert(seed: int, **config: float) -> BertForMaskedLM:
    """A random 2-layer BertForMaskedLM that never prefers [MASK] (a trained MDM never does; LLaDA would write it)."""
    torch.manual_seed(seed)
    settings = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        **config,
    )
    model = BertForMaskedLM(settings).eval()
    with torch.no_grad():
        model.cls.predictions.bias[MASK_ID] = -1e4
    return model


@pytest.fixture(scope="module")
def bert() -> BertForMaskedLM:
    return tiny_bert(1234)


def llada_num_transfer_tokens(block_masks: torch.Tensor, steps: int) -> torch.Tensor:
    """LLaDA: the same number of tokens each step, the remainder going to the first steps."""
    masked = block_masks.sum(dim=1, keepdim=True)
    base, remainder = masked // steps, masked % steps
    counts = torch.zeros(masked.shape[0], steps, dtype=torch.int64) + base
    for row in range(masked.shape[0]):
        counts[row, : int(remainder[row])] += 1
    return counts


def llada_generate(
    model,
    prompt: torch.Tensor,
    steps: int,
    gen_length: int,
    block_length: int,
    cfg_scale: float = 0.0,
    softmax_dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, int]:
    """LLaDA's generate() at temperature 0, low_confidence remasking; returns (ids, model calls).

    softmax_dtype float64 is generate() before June 2025; the model's dtype (float32 here) is its current version.
    With cfg_scale > 0 the unconditional pass masks the prompt and the logits are mixed as LLaDA mixes them.
    """
    rows, prompt_length = prompt.shape
    x = torch.full((rows, prompt_length + gen_length), MASK_ID, dtype=torch.long)
    x[:, :prompt_length] = prompt
    prompt_index = x != MASK_ID
    n_blocks = gen_length // block_length
    per_block = steps // n_blocks
    calls = 0
    for block in range(n_blocks):
        start = prompt_length + block * block_length
        end = start + block_length
        counts = llada_num_transfer_tokens(x[:, start:end] == MASK_ID, per_block)
        for step in range(per_block):
            masks = x == MASK_ID
            with torch.no_grad():
                if cfg_scale > 0:
                    un_x = x.clone()
                    un_x[prompt_index] = MASK_ID
                    logits, un_logits = torch.chunk(model(input_ids=torch.cat([x, un_x])).logits, 2, dim=0)
                    logits = un_logits + (cfg_scale + 1) * (logits - un_logits)
                else:
                    logits = model(input_ids=x).logits
            calls += 1
            x0 = torch.argmax(logits.double().exp(), dim=-1)  # Gumbel noise at temperature 0 is exactly 1
            p = torch.softmax(logits.to(softmax_dtype), dim=-1)
            score = torch.gather(p, -1, x0[..., None]).squeeze(-1)
            score[:, end:] = -np.inf
            x0 = torch.where(masks, x0, x)
            score = torch.where(masks, score, torch.tensor(-np.inf, dtype=softmax_dtype))
            commit = torch.zeros_like(x, dtype=torch.bool)
            for row in range(rows):
                _, chosen = torch.topk(score[row], k=int(counts[row, step]))
                commit[row, chosen] = True
            x[commit] = x0[commit]
    return x, calls


def _ours(model, prompt, steps, gen_length, block_length, cfg_scale=0.0, confidence_dtype="float64"):
    rows, prompt_length = prompt.shape
    ids = torch.cat([prompt, torch.full((rows, gen_length), MASK_ID, dtype=torch.long)], dim=1)
    alphas = alpha_grids([named("linear")] * rows, steps)
    settings = SamplerSettings(
        sampler="count",
        remasking="low_confidence",
        temperature=0.0,
        block_length=block_length,
        cfg_scale=cfg_scale,
        confidence_dtype=confidence_dtype,
    )
    return sample(BertDenoiser(model), ids, alphas, settings, list(range(rows)), gen_region=(prompt_length, gen_length))


CASES = [
    # (rows, prompt length, steps, gen_length, block_length)
    (4, 6, 6, 10, 5),  # two blocks of 5 masks, 3 steps each: counts 2, 2, 1
    (3, 5, 5, 12, 12),  # one block, 12 over 5 steps: 3, 3, 2, 2, 2
    (5, 4, 8, 8, 2),  # four blocks of 2, 2 steps each: one per step
    (4, 7, 9, 12, 4),  # three blocks of 4 masks, 3 steps each: 2, 1, 1
    (2, 3, 12, 24, 8),  # three blocks of 8 masks, 4 steps each
]


@pytest.mark.parametrize(("rows", "prompt_length", "steps", "gen_length", "block_length"), CASES)
def test_linear_count_sampler_is_token_identical_to_llada_generate(
    bert, rows, prompt_length, steps, gen_length, block_length
):
    generator = torch.Generator().manual_seed(rows * 100 + steps)
    prompt = torch.randint(5, VOCAB, (rows, prompt_length), generator=generator)
    reference, _ = llada_generate(bert, prompt, steps, gen_length, block_length)
    assert not bool((reference == MASK_ID).any()), "the fixture must keep LLaDA from writing the mask token"
    ours = _ours(bert, prompt, steps, gen_length, block_length)
    assert torch.equal(ours.ids, reference)


@pytest.mark.parametrize(("rows", "prompt_length", "steps", "gen_length", "block_length"), CASES[:3])
def test_confidence_in_the_models_dtype_is_llada_current_generate(
    bert, rows, prompt_length, steps, gen_length, block_length
):
    """The default confidence_dtype "model": softmax in the model's dtype (float32 here), as generate() today."""
    generator = torch.Generator().manual_seed(rows * 100 + steps)
    prompt = torch.randint(5, VOCAB, (rows, prompt_length), generator=generator)
    reference, _ = llada_generate(bert, prompt, steps, gen_length, block_length, softmax_dtype=torch.float32)
    ours = _ours(bert, prompt, steps, gen_length, block_length, confidence_dtype="model")
    assert torch.equal(ours.ids, reference)


@pytest.fixture(scope="module")
def prompt_sensitive_bert() -> BertForMaskedLM:
    """Large initial weights, so that the prompt moves the logits and guidance has something to amplify."""
    model = tiny_bert(99, initializer_range=1.0)
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight[MASK_ID] -= 50  # masked slots far from any token
    return model


@pytest.mark.parametrize("cfg_scale", [0.5, 2.0])
def test_classifier_free_guidance_is_llada_cfg(prompt_sensitive_bert, cfg_scale):
    model = prompt_sensitive_bert
    rows, prompt_length, steps, gen_length, block_length = 4, 6, 6, 10, 5
    prompt = torch.randint(5, VOCAB, (rows, prompt_length), generator=torch.Generator().manual_seed(21))
    reference, _ = llada_generate(model, prompt, steps, gen_length, block_length, cfg_scale=cfg_scale)
    plain, _ = llada_generate(model, prompt, steps, gen_length, block_length)
    assert not torch.equal(reference, plain), "the guidance must change some token, or this test shows nothing"
    assert not bool((reference == MASK_ID).any())
    ours = _ours(model, prompt, steps, gen_length, block_length, cfg_scale=cfg_scale)
    assert torch.equal(ours.ids, reference)


def test_linear_plan_commits_exactly_llada_counts_per_step(bert):
    rows, prompt_length, steps, gen_length, block_length = 3, 5, 6, 15, 5
    prompt = torch.randint(5, VOCAB, (rows, prompt_length), generator=torch.Generator().manual_seed(7))
    ours = _ours(bert, prompt, steps, gen_length, block_length)
    per_block = llada_num_transfer_tokens(torch.ones(rows, block_length, dtype=torch.bool), steps // 3)
    assert np.array_equal(ours.committed_per_step, np.tile(per_block.numpy(), (1, 3)))


def test_steps_beyond_the_masked_count_match_llada_and_skip_the_model(bert):
    """8 steps for blocks of 3 masks: LLaDA runs the model at every step, we only at the 3 x 2 steps that commit."""
    rows, prompt_length, steps, gen_length, block_length = 3, 4, 8, 6, 3
    prompt = torch.randint(5, VOCAB, (rows, prompt_length), generator=torch.Generator().manual_seed(11))
    reference, calls = llada_generate(bert, prompt, steps, gen_length, block_length)
    ours = _ours(bert, prompt, steps, gen_length, block_length)
    assert torch.equal(ours.ids, reference)
    assert calls == steps
    assert ours.nfe == 6
