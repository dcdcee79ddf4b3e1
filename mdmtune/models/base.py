"""The Denoiser protocol: what a sampler needs from any masked diffusion model.

Samplers, evaluation and tuning see only this protocol, never a checkpoint format, so adding a format means adding
one adapter module and nothing else. Must never import FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class TextCodec(Protocol):
    """Turns text into token ids and back; knows the mask token's text."""

    mask_token: str
    """The text of the mask token (the default infill mask symbol of eval sets)."""

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, with no special tokens added."""
        ...

    def encode_default(self, text: str) -> list[int]:
        """Token ids of `text` as the tokenizer's own `__call__` gives them by default (template tokens included)."""
        ...

    def decode(self, ids: list[int]) -> str:
        """Text of `ids`, special tokens (mask, padding, end-of-text) left out."""
        ...


@runtime_checkable
class Denoiser(Protocol):
    """A masked diffusion model: token ids [B, L] -> logits [B, L, V] for every position at once."""

    mask_token_id: int
    vocab_size: int
    pad_token_id: int
    """The id of unused slots when records of different lengths share a batch (left padding, attention mask 0)."""
    end_token_ids: tuple[int, ...]
    """Ids that end a completion: the generated text is cut at the first of them (end-of-text, end-of-turn)."""
    device: torch.device
    codec: TextCodec

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, L, V] (float32 or the model's dtype) for ids [B, L] (int64, on `device`)."""
        ...
