"""mdmtune's count sampler beside LLaDA's own generate(), on the shipped BERT checkpoint and its 200 eval prompts.

LLaDA's code is not part of this project: take generate.py from a clone of ML-GSAI/LLaDA at two versions, the
current one (softmax in the model's dtype) and the March 2025 one (commit d5634da, float64 softmax), and pass their
paths. Linear schedule, temperature 0, low-confidence remasking, with and without blocks and classifier-free
guidance; prints one JSON line per setting with the number of identical sequences.

    git -C LLaDA show HEAD:generate.py > /tmp/generate_current.py
    git -C LLaDA show d5634da:generate.py > /tmp/generate_march.py
    python scripts/compare_with_llada.py /tmp/generate_current.py /tmp/generate_march.py
"""

import importlib.util
import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from mdmtune.core.schedules import alpha_grids, named
from mdmtune.models.loading import load_denoiser
from mdmtune.sampling import SamplerSettings, sample

CK = "examples/bert_arithmetic/checkpoint"
GEN = 16
SETTINGS = ((4, 16, 0.0), (8, 16, 0.0), (16, 16, 0.0), (8, 4, 0.0), (16, 8, 0.0), (8, 16, 1.0), (8, 4, 2.0))
"""(steps, block_length, cfg_scale)"""


def load(path):
    spec = importlib.util.spec_from_file_location(path.split("/")[-1][:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


torch.set_num_threads(2)
current, march = load(sys.argv[1]), load(sys.argv[2])
tokenizer = AutoTokenizer.from_pretrained(CK)
model = AutoModelForMaskedLM.from_pretrained(CK).eval()
denoiser = load_denoiser(CK, device="cpu")
records = [json.loads(line) for line in Path("examples/bert_arithmetic/eval.jsonl").read_text().splitlines()]
prompt = torch.tensor([tokenizer(r["prompt"])["input_ids"][:-1] for r in records])  # [CLS] prompt, LLaDA's layout
mask = tokenizer.mask_token_id
out = []
for version, module, dtype in (("current", current, "model"), ("2025-03", march, "float64")):
    for steps, block, cfg in (
        (4, 16, 0.0),
        (8, 16, 0.0),
        (16, 16, 0.0),
        (8, 4, 0.0),
        (16, 8, 0.0),
        (8, 16, 1.0),
        (8, 4, 2.0),
    ):
        kwargs = dict(steps=steps, gen_length=GEN, block_length=block, temperature=0.0, cfg_scale=cfg, mask_id=mask)
        if version == "current":
            kwargs["attention_mask"] = torch.ones_like(prompt)  # its cfg branch needs one
        if version == "current":
            theirs = module.generate(model, prompt, **kwargs)
        else:  # the March 2025 generate() takes one prompt at a time
            theirs = torch.cat([module.generate(model, prompt[i : i + 1], **kwargs) for i in range(len(records))])
        ids = torch.cat([prompt, torch.full((len(records), GEN), mask)], dim=1)
        settings = SamplerSettings(block_length=block, cfg_scale=cfg, confidence_dtype=dtype)
        alphas = alpha_grids([named("linear")] * len(records), steps)
        ours = sample(denoiser, ids, alphas, settings, list(range(len(records))), (prompt.shape[1], GEN)).ids
        same = int((ours == theirs).all(dim=1).sum())
        out.append(
            {
                "llada_generate": version,
                "steps": steps,
                "block_length": block,
                "cfg_scale": cfg,
                "confidence_dtype": dtype,
                "sequences_identical": same,
                "sequences": len(records),
                "llada_wrote_mask": int((theirs == mask).any(dim=1).sum()),
            }
        )
        print(json.dumps(out[-1]), flush=True)
print(json.dumps({"identical": sum(o["sequences_identical"] for o in out), "total": sum(o["sequences"] for o in out)}))
