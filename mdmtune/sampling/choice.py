"""One step's decisions on the candidate positions: which token each would take, and how sure the model is.

Inputs are the logits of the candidate positions only ([n, V], gathered out of [B, L, V]), promoted to float64: bf16
or float32 logits are too coarse for Gumbel-max sampling and confidence ranking (LLaDA computes both in float64).
Rows are processed in chunks so that a large vocabulary (LLaDA: 126k) never needs more than ~2**25 float64 at once.
The mask token is never chosen (as MDLM): a committed position must hold a real token. Confidence is the
softmax of the untempered logits over the whole vocabulary, mask included, exactly as LLaDA's low_confidence.
Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import torch

from mdmtune.sampling.seeds import LazyGumbel

_CHUNK_ELEMENTS = 1 << 25


def _chunks(rows: int, vocab: int) -> list[slice]:
    size = max(1, _CHUNK_ELEMENTS // max(1, vocab))
    return [slice(start, min(rows, start + size)) for start in range(0, rows, size)]


def choose_tokens(
    logits: torch.Tensor, temperature: float, gumbel: torch.Tensor | LazyGumbel | None, mask_token_id: int
) -> torch.Tensor:
    """Token per row of `logits` [n, V]: argmax at temperature 0, else argmax(logits + T * Gumbel) (Gumbel-max).

    `gumbel` is anything whose [row slice] gives that slice's noise [rows, V] (a tensor, or seeds.LazyGumbel).

    argmax(l + T g) = argmax(l / T + g): a draw from softmax(l / T), the same draw as LLaDA's exp(l) / (-log u)^T.
    """
    out = torch.empty(logits.shape[0], dtype=torch.long, device=logits.device)
    for part in _chunks(logits.shape[0], logits.shape[-1]):
        scores = logits[part].double()
        if temperature > 0:
            assert gumbel is not None, "a temperature above 0 draws Gumbel noise"
            scores = scores + temperature * gumbel[part].to(scores.device)
        scores[:, mask_token_id] = -torch.inf
        out[part] = scores.argmax(dim=-1)
    return out


def confidence(
    logits: torch.Tensor, tokens: torch.Tensor | None, remasking: str, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Score per row of `logits` [n, V] (higher commits first) for low_confidence, margin or entropy remasking.

    low_confidence: p(token) under softmax(untempered logits); margin: top-1 minus top-2 probability;
    entropy: sum p log p (negative entropy: peaked distributions first). The softmax is taken in `dtype` (the
    model's, as LLaDA's current generate(), or float64); scores come back as float64, which holds any lower
    precision exactly, so ties stay ties.
    """
    out = torch.empty(logits.shape[0], dtype=torch.float64, device=logits.device)
    for part in _chunks(logits.shape[0], logits.shape[-1]):
        probabilities = torch.softmax(logits[part].to(dtype), dim=-1)
        if remasking == "low_confidence":
            out[part] = probabilities.gather(-1, tokens[part, None]).squeeze(-1)  # type: ignore[index]
        elif remasking == "margin":
            top = probabilities.topk(2, dim=-1).values if logits.shape[-1] > 1 else probabilities
            out[part] = top[:, 0] - (top[:, 1] if top.shape[-1] > 1 else 0.0)
        elif remasking == "entropy":
            out[part] = torch.special.xlogy(probabilities, probabilities).sum(dim=-1)
        else:
            raise ValueError(f"no model confidence for remasking {remasking!r}")
    return out


def top_k_per_row(scores: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Boolean [b, L]: the k[r] highest scores of each row r (scores -inf where a position is not a candidate).

    A stable descending sort, so ties go to the earlier position; the same choice as topk for distinct scores.
    """
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    take = torch.arange(scores.shape[1], device=scores.device)[None, :] < k[:, None]
    return torch.zeros_like(take).scatter_(1, order, take)
