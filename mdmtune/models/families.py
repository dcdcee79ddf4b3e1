"""Model families of Hugging Face MDMs: how each names its mask token, its end tokens and its logits' alignment.

Detected from config.json and the tokenizer (no weights read), overridable by the caller, and always reported
(LoadedDenoiser.describe), so a wrong guess is visible before a search runs on it:

- masked_lm: BERT, RoBERTa, ModernBERT and other AutoModelForMaskedLM models; the mask is the tokenizer's mask token.
- llada: LLaDA (custom code); the mask id is config.json's `mask_token_id`, else the tokenizer's mask token.
- dream: Dream (custom code, adapted from an autoregressive LM): logits at i predict token i+1, so they are shifted
  back; the mask id is generation_config.json's `mask_token_id`, then config.json's, then the tokenizer's.
- mdlm: MDLM-style models over a GPT-2 vocabulary with one mask token appended after it: the tokenizer has no mask
  token, and the mask id is the first id past the tokenizer (config.json's vocab_size is one more).

End tokens, for every family: each id of generation_config.json's `eos_token_id` (an id or a list: LLaDA lists
end-of-text and end-of-turn) plus the tokenizer's eos; config.json's `eos_token_id` stands in when there is no
generation config. The pad token is not an end token unless it is listed. Must never import FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mdmtune.options.names import FAMILIES

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["FAMILIES", "detect_family", "end_token_ids", "int_or_none", "listed_ids", "mask_token_candidates"]


def detect_family(config: dict[str, Any], tokenizer: PreTrainedTokenizerBase) -> str:
    """The family of a checkpoint from its config.json (model_type, auto_map) and tokenizer."""
    model_type = str(config.get("model_type", "")).lower()
    code = " ".join(str(v) for v in (config.get("auto_map") or {}).values()).lower()
    if "llada" in model_type or "llada" in code:
        return "llada"
    if "dream" in model_type or "dream" in code:
        return "dream"
    if "mdlm" in model_type or "mdlm" in code or _mask_appended(config, tokenizer):
        return "mdlm"
    return "masked_lm"


def _mask_appended(config: dict[str, Any], tokenizer: PreTrainedTokenizerBase) -> bool:
    vocab = config.get("vocab_size")
    return getattr(tokenizer, "mask_token_id", None) is None and isinstance(vocab, int) and vocab == len(tokenizer) + 1


def mask_token_candidates(
    family: str, tokenizer: PreTrainedTokenizerBase, config: dict[str, Any], generation: dict[str, Any]
) -> Iterator[int | None]:
    """Where the family keeps its mask id, in order of trust; the first that is an int wins."""
    from_tokenizer = getattr(tokenizer, "mask_token_id", None)
    from_config = int_or_none(config.get("mask_token_id"))
    if family == "llada":
        yield from (from_config, from_tokenizer)
    elif family == "dream":
        yield from (int_or_none(generation.get("mask_token_id")), from_config, from_tokenizer)
    elif family == "mdlm":
        yield from (from_tokenizer, from_config, len(tokenizer) if _mask_appended(config, tokenizer) else None)
    else:
        yield from (from_tokenizer, from_config)


def listed_ids(value: object) -> tuple[int, ...]:
    """An `eos_token_id` field as ids: one id, a list of ids, or nothing (anything else is ignored)."""
    values = value if isinstance(value, list) else [value]
    return tuple(v for v in (int_or_none(v) for v in values) if v is not None)


def end_token_ids(
    tokenizer: PreTrainedTokenizerBase, config: dict[str, Any], generation: dict[str, Any]
) -> tuple[int, ...]:
    """Every id that ends a completion, in a stable order (generation config first, then the tokenizer's eos)."""
    listed = generation.get("eos_token_id") if "eos_token_id" in generation else config.get("eos_token_id")
    ids = list(listed_ids(listed))
    eos = int_or_none(getattr(tokenizer, "eos_token_id", None))
    if eos is not None:
        ids.append(eos)
    return tuple(dict.fromkeys(ids))


def int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
