"""The exact toy's posterior as a Denoiser: a model whose best schedule is known, for checking the tuner itself.

For each masked position it gives P(a | the unmasked tokens) under a toy target (docs/math.md, the exact toy), so
with the count sampler, `random` remasking and temperature 1 the real sampling pipeline (mdmtune.sampling,
mdmtune.tuning.evaluation) draws exactly the toy's count sampler, and the expected score of a schedule under the regex
metric "the output is in the target's support" is the toy's exact `support_mass`. Tests and the search-efficiency
benchmark use it as a cheap, real model with an independently computed truth. Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import json

import torch

from mdmtune.core.toy import LETTERS, SEQUENCES, target_probabilities
from mdmtune.data.evalsets import EvalSet, parse_eval_set
from mdmtune.models.codec import CharCodec

SUPPORT_PATTERNS = {
    "extremes": "aaaaa|bbbbb",
    "two-or-three": "(?=(?:b*ab*){2,3}$)[ab]{5}",
}
"""The regex answer of a toy record: the output lies in the target's support."""


class ToyPosterior:
    """Denoiser (mdmtune.models.base) of a toy target on 5 tokens over {a, b}; `calls` counts forward passes."""

    def __init__(self, target: str) -> None:
        probabilities = target_probabilities(target)
        self.codec = CharCodec.for_alphabet(LETTERS)
        self.mask_token_id = self.codec.mask_token_id
        self.pad_token_id = self.codec.eot_token_id
        self.end_token_ids = (self.codec.eot_token_id,)
        self.vocab_size = self.codec.vocab_size
        self.device = torch.device("cpu")
        self.a_id, self.b_id = self.codec.encode("a")[0], self.codec.encode("b")[0]
        support = [s for s, p in zip(SEQUENCES, probabilities, strict=True) if p > 0]
        self.support = torch.tensor([self.codec.encode(s) for s in support])  # [K, 5], uniform target
        self.calls = 0

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """log P(a), log P(b) at every position given the unmasked ones (1/2 each where nothing matches)."""
        self.calls += 1
        known = ids != self.mask_token_id
        agree = (self.support[None] == ids[:, None]) | ~known[:, None]  # [B, K, 5]
        consistent = agree.all(dim=-1).double()
        total = consistent.sum(dim=1, keepdim=True)
        p_a = (consistent @ (self.support == self.a_id).double()) / total.clamp(min=1)
        p_a = torch.where(total > 0, p_a, torch.full_like(p_a, 0.5))
        out = torch.full((*ids.shape, self.vocab_size), -1e9, dtype=torch.float64)
        out[..., self.a_id] = torch.log(p_a.clamp(min=1e-300))
        out[..., self.b_id] = torch.log((1 - p_a).clamp(min=1e-300))
        return out.float()


def toy_eval_set(target: str, n: int) -> EvalSet:
    """n infill records "_____" whose answer is the support regex (records differ only by their seeds)."""
    lines = [json.dumps({"id": i, "masked": "_____", "answer": SUPPORT_PATTERNS[target]}) for i in range(n)]
    return parse_eval_set(("\n".join(lines) + "\n").encode())
