"""The threshold decoder against Fast-dLLM's own `generate` (NVlabs/Fast-dLLM, llada/generate.py), run as published.

Opt-in, like LLaDA's generate.py in test_export_llada.py: set MDMTUNE_FAST_DLLM to a checkout's `llada` folder (its
`generate.py` imports the repo's `model` package, which needs einops). Fast-dLLM's threshold rule commits, in each
call, the most confident masked position of the current block and every other one whose float64 softmax confidence
is at least tau; mdmtune's threshold decoder with `confidence_dtype="float64"` must give the same tokens and the
same number of model calls, record for record, on the shipped BERT checkpoint at temperature 0.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

import pytest
import torch

from mdmtune.sampling import SamplerSettings, sample

pytest.importorskip("transformers")
FAST_DLLM = os.environ.get("MDMTUNE_FAST_DLLM")
pytestmark = pytest.mark.skipif(not FAST_DLLM, reason="set MDMTUNE_FAST_DLLM to Fast-dLLM's llada folder")

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "examples" / "bert_arithmetic" / "checkpoint"
EVAL_SET = ROOT / "examples" / "bert_arithmetic" / "eval.jsonl"
RECORDS = 24
GEN_LENGTH = 16


@pytest.fixture(scope="module")
def fast_dllm():
    sys.path.insert(0, str(FAST_DLLM))
    try:
        return importlib.import_module("generate")
    finally:
        sys.path.remove(str(FAST_DLLM))


@pytest.fixture(scope="module")
def bert():
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from mdmtune.models.loading import load_denoiser

    tokenizer = AutoTokenizer.from_pretrained(str(CHECKPOINT))
    model = AutoModelForMaskedLM.from_pretrained(str(CHECKPOINT)).eval()
    records = [json.loads(line) for line in EVAL_SET.read_text().splitlines()[:RECORDS]]
    prompts = [torch.tensor([tokenizer(r["prompt"])["input_ids"][:-1]]) for r in records]  # [CLS] prompt
    return model, tokenizer, prompts, load_denoiser(CHECKPOINT, device="cpu")


@pytest.mark.parametrize("threshold", [0.9, 0.5, 0.0])
@pytest.mark.parametrize("block_length", [16, 4])
def test_fast_dllm_generate_with_a_threshold_gives_mdmtunes_tokens_and_calls(fast_dllm, bert, threshold, block_length):
    model, tokenizer, prompts, denoiser = bert
    settings = SamplerSettings(
        decoder="threshold", threshold=threshold, block_length=block_length, confidence_dtype="float64"
    )
    same_tokens = same_calls = 0
    for prompt in prompts:
        with torch.no_grad():
            theirs, their_nfe = fast_dllm.generate(
                model, prompt, steps=GEN_LENGTH, gen_length=GEN_LENGTH, block_length=block_length,
                temperature=0.0, mask_id=tokenizer.mask_token_id, threshold=threshold,
            )  # fmt: skip
        ids = torch.cat([prompt, torch.full((1, GEN_LENGTH), denoiser.mask_token_id)], dim=1)
        ours = sample(denoiser, ids, None, settings, [0], (prompt.shape[1], GEN_LENGTH))
        same_tokens += int(torch.equal(ours.ids, theirs))
        same_calls += int(ours.nfe == their_nfe)
    assert (same_tokens, same_calls) == (len(prompts), len(prompts))
