"""Train a small BERT masked LM as an MDM, with transformers alone, and save it with save_pretrained.

Why this exists: every other shipped checkpoint is the project's own format. This one is what a user of the field
brings: a `BertForMaskedLM` and a standard `BertTokenizerFast` (WordPiece, whose template wraps every text in
[CLS] ... [SEP]), written by `save_pretrained`, with a generation config naming its end-of-text id. mdmtune must
sample it exactly as a loop written directly against transformers does (tests/test_foreign_checkpoint.py).

Task: the built-in arithmetic testbed ("347+589=" -> "936", then end-of-text up to 24 tokens). A training sequence is
what the tokenizer's own `__call__` makes of prompt + answer, with [EOS] filling the answer region up to 24 tokens:
[CLS] 3 ##4 ##7 + 5 ##8 ##9 = 9 ##3 ##6 [EOS] ... [EOS] [SEP]. Answer-region tokens are masked with probability
p ~ U(eps, 1) per row and the cross-entropy on masked tokens is weighted 1/p (the LLaDA/MDLM loss, as LLaDA's SFT
masks only the response). Nothing here imports mdmtune's models or sampler: only the testbed's problem generator.

    python scripts/train_bert_mdm.py --out examples/bert_arithmetic/checkpoint --steps 2500 --threads 2
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast, GenerationConfig

from mdmtune.testbeds.arithmetic import ArithmeticTestbed

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[EOS]"]


def build_tokenizer() -> BertTokenizerFast:
    """A standard WordPiece BERT tokenizer over digits, '+' and '='; [EOS] is its end-of-text token."""
    words = [*"0123456789", *(f"##{d}" for d in "0123456789"), "+", "="]
    vocab = {token: i for i, token in enumerate(SPECIALS + words)}
    return BertTokenizerFast(vocab=vocab, do_lower_case=False, eos_token="[EOS]")


def training_ids(
    tokenizer: BertTokenizerFast, rng: np.random.Generator, testbed: ArithmeticTestbed, gen_length: int
) -> list[int]:
    """One sequence: the tokenizer's encoding of prompt + answer, the answer region padded with [EOS]."""
    prompt, answer = testbed.problem(rng)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    whole = tokenizer(prompt + answer)["input_ids"]  # [CLS] prompt answer [SEP], as __call__ encodes by default
    answer_ids = whole[1 + len(prompt_ids) : -1]
    region = answer_ids + [tokenizer.eos_token_id] * (gen_length - len(answer_ids))
    return [tokenizer.cls_token_id, *prompt_ids, *region, tokenizer.sep_token_id]


def mdm_loss(model: BertForMaskedLM, ids: torch.Tensor, region: slice, mask_id: int, gen: torch.Generator):
    """Mask answer-region tokens with p ~ U(eps, 1) (low-discrepancy over the batch); CE on them weighted 1/p."""
    batch = ids.shape[0]
    eps = 1e-3
    p = eps + (1 - eps) * ((torch.rand(1, generator=gen) + torch.arange(batch) / batch) % 1.0)
    masked = torch.zeros_like(ids, dtype=torch.bool)
    masked[:, region] = torch.rand(batch, region.stop - region.start, generator=gen) < p.unsqueeze(1)
    noisy = torch.where(masked, torch.full_like(ids, mask_id), ids)
    logits = model(input_ids=noisy).logits
    token_loss = F.cross_entropy(logits.transpose(1, 2), ids, reduction="none")
    weighted = torch.where(masked, token_loss / p.unsqueeze(1), torch.zeros_like(token_loss))
    return weighted.sum() / (batch * (region.stop - region.start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-digits", type=int, default=2, help="Operand digits (the testbed's default is 3).")
    parser.add_argument("--gen-length", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    tokenizer = build_tokenizer()
    testbed = ArithmeticTestbed(max_digits=args.max_digits, target_length=args.gen_length, gen_length=args.gen_length)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=384,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = BertForMaskedLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    warmup = max(1, args.steps // 20)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / max(1, args.steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    zeros = "0" * args.max_digits
    prompt_length = len(tokenizer(f"{zeros}+{zeros}=", add_special_tokens=False)["input_ids"])
    region = slice(1 + prompt_length, 1 + prompt_length + args.gen_length)
    losses: list[float] = []
    started = time.perf_counter()
    model.train()
    for step in range(args.steps):
        ids = torch.tensor([training_ids(tokenizer, rng, testbed, args.gen_length) for _ in range(args.batch_size)])
        loss = mdm_loss(model, ids, region, tokenizer.mask_token_id, gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        if step % 100 == 0 or step == args.steps - 1:
            print(json.dumps({"step": step, "loss": round(float(np.mean(losses[-100:])), 4)}), flush=True)
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    tokenizer.save_pretrained(args.out)
    GenerationConfig(eos_token_id=[tokenizer.eos_token_id], pad_token_id=tokenizer.pad_token_id).save_pretrained(
        args.out
    )
    summary = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "loss_first_50": round(float(np.mean(losses[:50])), 4),
        "loss_last_50": round(float(np.mean(losses[-50:])), 4),
        "seconds": round(time.perf_counter() - started, 1),
        "command": "python scripts/train_bert_mdm.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
    }
    (args.out / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
