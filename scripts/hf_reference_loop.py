"""The model's own sampling loop, written directly against transformers: what mdmtune's sampler must agree with.

Why it exists: a sampler can only be trusted on a foreign checkpoint if it samples that checkpoint exactly as the
checkpoint's own code does. This loop uses nothing of mdmtune's encoding, sampler or decoding: the tokenizer's own
`__call__` (template included), `model(input_ids).logits`, LLaDA's low-confidence rule (argmax token, softmax
probability as confidence, top-k commits per step and block), and `tokenizer.decode`. The only thing taken from
mdmtune is the count plan of a Beta schedule (the math core, tested against the closed forms separately); the
linear plan is LLaDA's own `get_num_transfer_tokens` formula, computed here.

    python scripts/hf_reference_loop.py --checkpoint examples/bert_arithmetic/checkpoint \
        --eval-set examples/arithmetic/eval.jsonl --steps 8 --gen-length 24 [--a 0.7 --b 0.7] [--block-length 8]

prints JSON: {"records": [{"id", "output", "score"}], "mean_score"} with exact-match scores (completion records).
Completion layout: the tokenizer's encoding of the prompt with the generated region before its trailing special
tokens ([CLS] prompt <gen> [SEP] for BERT); the output is cut at the first end-of-text id (the generation config's
eos ids and the tokenizer's eos). Infill records: the tokenizer's encoding of the masked text, [MASK] for each blank.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def linear_counts(masked: int, steps: int) -> list[int]:
    """LLaDA's get_num_transfer_tokens: the same count each step, the remainder on the first steps."""
    base, remainder = divmod(masked, steps)
    return [base + (1 if k < remainder else 0) for k in range(steps)]


def plan(masked: int, steps: int, a: float | None, b: float | None) -> list[int]:
    if a is None:
        return linear_counts(masked, steps)
    from mdmtune.core.plans import count_plan
    from mdmtune.core.schedules import beta

    return [int(k) for k in count_plan(beta(a, b).on_grid(steps), masked)]


def initial_ids(tokenizer, record: dict, gen_length: int | None) -> tuple[list[int], int | None]:
    """The tokenizer's own encoding; for a completion, gen_length masks before the trailing special tokens."""
    if "masked" in record:
        return tokenizer(record["masked"])["input_ids"], None
    full = tokenizer(record["prompt"])["input_ids"]
    content = tokenizer(record["prompt"], add_special_tokens=False)["input_ids"]
    prefix = next(i for i in range(len(full) - len(content) + 1) if full[i : i + len(content)] == content)
    end = prefix + len(content)
    return full[:end] + [tokenizer.mask_token_id] * gen_length + full[end:], end


def generate(model, ids: list[int], start: int | None, gen_length: int | None, steps: int, block_length, a, b, mask):
    """LLaDA's generate() at temperature 0 with low-confidence remasking, one record, blocks over the gen region."""
    x = torch.tensor([ids])
    if start is None:  # infill: every mask, one window
        windows = [(0, len(ids))]
    else:
        block = block_length or gen_length
        windows = [(start + i, start + i + block) for i in range(0, gen_length, block)]
    per_window = steps // len(windows)
    for lo, hi in windows:
        counts = plan(int((x[0, lo:hi] == mask).sum()), per_window, a, b)
        for k in counts:
            if k == 0:
                continue
            with torch.no_grad():
                logits = model(input_ids=x).logits[0].float()
            x0 = logits.argmax(dim=-1)
            confidence = torch.softmax(logits, dim=-1).gather(-1, x0[:, None]).squeeze(-1)
            candidates = torch.zeros_like(confidence, dtype=torch.bool)
            candidates[lo:hi] = x[0, lo:hi] == mask
            confidence = torch.where(candidates, confidence, torch.tensor(-np.inf))
            chosen = torch.topk(confidence, k).indices
            x[0, chosen] = x0[chosen]
    return x[0].tolist()


def end_ids(checkpoint: Path, tokenizer) -> set[int]:
    path = checkpoint / "generation_config.json"
    listed = json.loads(path.read_text()).get("eos_token_id") if path.is_file() else None
    ids = set(listed if isinstance(listed, list) else [listed] if listed is not None else [])
    return ids | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())


def run(checkpoint: Path, records: list[dict], steps: int, gen_length, block_length=None, a=None, b=None) -> dict:
    """Sample every record; the outputs, exact-match scores and the final token ids."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    model = AutoModelForMaskedLM.from_pretrained(str(checkpoint)).eval()
    ends = end_ids(checkpoint, tokenizer)
    rows, ids_out = [], []
    for number, record in enumerate(records, start=1):
        ids, start = initial_ids(tokenizer, record, gen_length)
        final = generate(model, ids, start, gen_length, steps, block_length, a, b, tokenizer.mask_token_id)
        ids_out.append(final)
        if start is None:
            output = tokenizer.decode(final, skip_special_tokens=True)
        else:
            region = final[start : start + gen_length]
            cut = next((i for i, t in enumerate(region) if t in ends), len(region))
            output = tokenizer.decode(region[:cut], skip_special_tokens=True)
        score = float(output.strip() == record["answer"].strip())
        rows.append({"id": record.get("id", number), "output": output, "score": score})
    return {"records": rows, "mean_score": float(np.mean([r["score"] for r in rows])), "ids": ids_out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--eval-set", type=Path, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--gen-length", type=int)
    parser.add_argument("--block-length", type=int)
    parser.add_argument("--a", type=float)
    parser.add_argument("--b", type=float)
    parser.add_argument("--limit", type=int, help="Only the first N records.")
    args = parser.parse_args()
    records = [json.loads(line) for line in args.eval_set.read_text().splitlines() if line.strip()]
    records = records[: args.limit] if args.limit else records
    torch.set_num_threads(1)
    result = run(args.checkpoint, records, args.steps, args.gen_length, args.block_length, args.a, args.b)
    result.pop("ids")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
