"""The tuned schedule in diffusers: BetaBlockRefinementScheduler (diffusers >= 0.42) gives mdmtune's tokens.

Checked on the shipped BERT checkpoint (examples/bert_arithmetic) at temperature 0, against `mdmtune sample`'s own
encoding and sampler ([CLS] prompt <gen> [SEP]):
- the real LLaDA2Pipeline with the scheduler, one block holding prompt and generated region (the pipeline's blocks
  see only the blocks before them, LLaDA2's block diffusion, so with several blocks it is not LLaDA's sampler);
  the model is BERT behind a small adapter that appends BERT's trailing [SEP] to what the pipeline passes;
- the scheduler's own set_timesteps/step driving a LLaDA-style loop over several blocks.
And: the config round trip (save_config / from_config / from_pretrained), and the parent's threshold and editing
behaviour kept (equal to BlockRefinementScheduler's step when the plans coincide).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mdmtune.core.plans import count_plan
from mdmtune.core.schedules import beta
from mdmtune.export import TunedSchedule, diffusers_config

pytest.importorskip("transformers")
diffusers = pytest.importorskip("diffusers")

from diffusers import BlockRefinementScheduler, LLaDA2Pipeline  # noqa: E402

from mdmtune.export.diffusers_scheduler import BetaBlockRefinementScheduler  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "examples" / "bert_arithmetic" / "checkpoint"
EVAL_SET = ROOT / "examples" / "bert_arithmetic" / "eval.jsonl"
RECORDS = 64
GEN_LENGTH = 16
SCHEDULES = [(0.35, 0.78), (1.0, 0.2), (3.0, 0.5)]


class BertWithSep(torch.nn.Module):
    """BERT as LLaDA2Pipeline calls a model: its input with BERT's [SEP] appended, logits of the input only."""

    def __init__(self, bert, sep_token_id: int) -> None:
        super().__init__()
        self.bert, self.sep = bert, sep_token_id

    @property
    def device(self) -> torch.device:  # what diffusers asks a pipeline's models (transformers models have it)
        return self.bert.device

    @property
    def dtype(self) -> torch.dtype:
        return self.bert.dtype

    def forward(self, input_ids, attention_mask=None, position_ids=None):
        rows = input_ids.shape[0]
        ids = torch.cat([input_ids, torch.full((rows, 1), self.sep)], dim=1)
        mask = torch.cat([attention_mask, torch.ones((rows, 1), dtype=attention_mask.dtype)], dim=1)
        positions = torch.cat([position_ids, position_ids[:, -1:] + 1], dim=1)
        logits = self.bert(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        return SimpleNamespace(logits=logits[:, :-1])


@pytest.fixture(scope="module")
def setup():
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from mdmtune.data.evalsets import load_eval_set
    from mdmtune.models.loading import load_denoiser
    from mdmtune.tuning.evaluation import encode_records

    tokenizer = AutoTokenizer.from_pretrained(str(CHECKPOINT))
    model = AutoModelForMaskedLM.from_pretrained(str(CHECKPOINT)).eval()
    denoiser = load_denoiser(CHECKPOINT, device="cpu")
    records = load_eval_set(EVAL_SET).records[:RECORDS]
    encoded = encode_records(denoiser, records, gen_length=GEN_LENGTH)  # what `mdmtune sample` encodes
    assert encoded.attention_mask is None, "the test wants one prompt length (no padding)"
    return SimpleNamespace(tokenizer=tokenizer, model=model, denoiser=denoiser, encoded=encoded)


def _mdmtune_tokens(setup, a: float, b: float, steps: int, block_length: int | None) -> torch.Tensor:
    from mdmtune.core.schedules import alpha_grids
    from mdmtune.sampling import SamplerSettings, sample

    encoded = setup.encoded
    alphas = alpha_grids([beta(a, b)] * len(encoded), steps)
    ids = sample(setup.denoiser, encoded.ids, alphas, SamplerSettings(block_length=block_length),
                 list(range(len(encoded))), encoded.gen_region).ids  # fmt: skip
    start, length = encoded.gen_region
    return ids[:, start : start + length]


def _scheduler(a, b, steps, gen_length, block_length=None) -> BetaBlockRefinementScheduler:
    tuned = TunedSchedule(f"beta({a:g},{b:g})", a, b, steps, gen_length, block_length)
    return BetaBlockRefinementScheduler.from_config(diffusers_config(tuned))


def test_config_round_trip_and_plan(tmp_path):
    tuned = TunedSchedule("beta(0.35,0.78)", 0.35, 0.78, steps=16, gen_length=32, block_length=8)
    scheduler = BetaBlockRefinementScheduler.from_config(diffusers_config(tuned))
    assert isinstance(scheduler, BlockRefinementScheduler)
    scheduler.save_config(tmp_path)
    written = json.loads((tmp_path / "scheduler_config.json").read_text())
    assert written["_class_name"] == "BetaBlockRefinementScheduler"
    assert (written["a"], written["b"], written["block_length"], written["num_inference_steps"]) == (0.35, 0.78, 8, 4)
    again = BetaBlockRefinementScheduler.from_pretrained(tmp_path)
    assert {k: v for k, v in again.config.items() if not k.startswith("_")} == {
        k: v for k, v in scheduler.config.items() if not k.startswith("_")
    }
    again.set_timesteps(4, block_length=8)
    assert again._transfer_schedule.tolist() == tuned.block_plans()[0]
    assert again.get_num_transfer_tokens(8, 4).tolist() == count_plan(beta(0.35, 0.78).on_grid(4), 8).tolist()
    with pytest.raises(ValueError, match="uniform-corruption"):
        again.step(torch.zeros(1, 8, 5), 0, torch.zeros(1, 8, dtype=torch.long), mask_token_id=None)


@pytest.mark.parametrize("steps", [8, 4, 5])
@pytest.mark.parametrize(("a", "b"), SCHEDULES)
def test_llada2_pipeline_gives_mdmtune_sample_tokens(setup, a, b, steps):
    encoded, tokenizer = setup.encoded, setup.tokenizer
    start, _ = encoded.gen_region
    prompt = encoded.ids[:, :start]  # [CLS] prompt; the pipeline appends the masks, the adapter the [SEP]
    block = start + GEN_LENGTH  # one block: the prompt and the generated region
    pipe = LLaDA2Pipeline(
        model=BertWithSep(setup.model, tokenizer.sep_token_id),
        scheduler=_scheduler(a, b, steps, GEN_LENGTH),
        tokenizer=tokenizer,
    )
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        input_ids=prompt, gen_length=GEN_LENGTH, block_length=block, num_inference_steps=steps, temperature=0.0,
        threshold=1.0, editing_threshold=None, eos_early_stop=False, output_type="seq",
    )  # fmt: skip
    ours = _mdmtune_tokens(setup, a, b, steps, None)
    assert torch.equal(out.sequences, ours), f"{int((out.sequences != ours).any(dim=1).sum())} of {RECORDS} differ"


@pytest.mark.parametrize(("steps", "block_length"), [(8, 4), (8, 8), (16, 8), (4, 16)])
@pytest.mark.parametrize(("a", "b"), SCHEDULES)
def test_scheduler_step_over_blocks_gives_mdmtune_sample_tokens(setup, a, b, steps, block_length):
    """LLaDA's semi-autoregressive loop (every block in view, the later ones masked) driven by set_timesteps/step."""
    encoded, mask = setup.encoded, setup.denoiser.mask_token_id
    start, _ = encoded.gen_region
    scheduler = _scheduler(a, b, steps, GEN_LENGTH, block_length)
    per_block = scheduler.config.num_inference_steps
    x = encoded.ids.clone()
    for lo in range(start, start + GEN_LENGTH, block_length):
        hi = lo + block_length
        scheduler.set_timesteps(per_block, block_length=block_length)
        for step in range(per_block):
            with torch.no_grad():
                logits = setup.model(input_ids=x).logits[:, lo:hi]
            x[:, lo:hi] = scheduler.step(
                logits, step, x[:, lo:hi], mask_token_id=mask, sampling_method="greedy"
            ).prev_sample
    ours = _mdmtune_tokens(setup, a, b, steps, block_length)
    assert torch.equal(x[:, start : start + GEN_LENGTH], ours)


@pytest.mark.parametrize(("threshold", "editing"), [(0.5, None), (0.9, 0.3), (1.0, 0.6)])
def test_threshold_and_editing_are_the_parents_when_the_plans_coincide(threshold, editing):
    """Full blocks, a plan equal to the parent's even spread (linear, 8 over 4): every output is the parent's."""
    ours, parent = BetaBlockRefinementScheduler(block_length=8, a=0.5, b=0.5), BlockRefinementScheduler(block_length=8)
    generator = torch.Generator().manual_seed(11)
    for scheduler in (ours, parent):
        scheduler.set_timesteps(4, block_length=8)
    assert ours._transfer_schedule.tolist() == parent._transfer_schedule.tolist() == [2, 2, 2, 2]
    sample = torch.full((6, 8), 3)
    for step in range(5):
        logits = torch.randn((6, 8, 10), generator=generator) * 3
        kwargs = dict(mask_token_id=3, threshold=threshold, editing_threshold=editing, sampling_method="greedy")
        mine, theirs = ours.step(logits, step, sample, **kwargs), parent.step(logits, step, sample, **kwargs)
        for field in ("prev_sample", "transfer_index", "editing_transfer_index", "sampled_tokens"):
            assert torch.equal(getattr(mine, field), getattr(theirs, field)), (step, field)
        sample = theirs.prev_sample


@pytest.mark.parametrize("threshold", [0.9, 0.6])
@pytest.mark.parametrize("steps", [8, 4])
@pytest.mark.parametrize(("a", "b"), SCHEDULES)
def test_llada2_pipeline_with_a_threshold_gives_mdmtunes_hybrid_decoder_tokens(setup, a, b, steps, threshold):
    """diffusers' own threshold rule (each step commits its planned count or every position above tau, the more)
    is mdmtune's hybrid decoder with the same Beta plan as its floor."""
    from mdmtune.core.schedules import alpha_grids
    from mdmtune.sampling import SamplerSettings, sample

    encoded, tokenizer = setup.encoded, setup.tokenizer
    start, _ = encoded.gen_region
    pipe = LLaDA2Pipeline(
        model=BertWithSep(setup.model, tokenizer.sep_token_id),
        scheduler=_scheduler(a, b, steps, GEN_LENGTH),
        tokenizer=tokenizer,
    )
    pipe.set_progress_bar_config(disable=True)
    out = pipe(
        input_ids=encoded.ids[:, :start], gen_length=GEN_LENGTH, block_length=start + GEN_LENGTH,
        num_inference_steps=steps, temperature=0.0, threshold=threshold, editing_threshold=None,
        eos_early_stop=False, output_type="seq",
    )  # fmt: skip
    settings = SamplerSettings(decoder="hybrid", threshold=threshold)
    alphas = alpha_grids([beta(a, b)] * len(encoded), steps)
    ids = sample(setup.denoiser, encoded.ids, alphas, settings, list(range(len(encoded))), encoded.gen_region).ids
    ours = ids[:, start : start + GEN_LENGTH]
    assert torch.equal(out.sequences, ours), f"{int((out.sequences != ours).any(dim=1).sum())} of {RECORDS} differ"
