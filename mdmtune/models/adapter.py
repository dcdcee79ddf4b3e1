"""The one Denoiser implementation that every checkpoint format fills in with its own forward function.

Why one class: input checks, inference mode, out-of-memory chunking and the float32 output are the same for native,
Hugging Face and TorchScript models; only "ids -> logits" differs. An adapter module loads its format and hands a
forward function here. Must never import FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from mdmtune.models.base import TextCodec
from mdmtune.models.device import ChunkedForward, check_ids

Forward = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


@dataclass(eq=False)
class LoadedDenoiser:
    """A loaded checkpoint satisfying mdmtune.models.base.Denoiser.

    `logits` returns float32 whatever the model's dtype (bf16 logits are too coarse for confidence ranking and
    Gumbel sampling). `max_length` is the longest sequence the model takes (None: unknown, e.g. TorchScript).
    `module` is the underlying torch module (for callers that need parameters, e.g. a checkpoint hash or training).
    `end_token_ids` end a completion (cut at the first); `family` and `shifted_logits` say how the checkpoint was read.
    """

    forward: Forward
    mask_token_id: int
    pad_token_id: int
    vocab_size: int
    device: torch.device
    dtype: torch.dtype
    codec: TextCodec
    format: str
    max_length: int | None = None
    module: torch.nn.Module | None = None
    max_batch: int = 1024
    end_token_ids: tuple[int, ...] = ()
    family: str = "native"
    shifted_logits: bool = False
    _chunked: ChunkedForward = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._chunked = ChunkedForward(self._forward_float32, self.max_batch)

    def _forward_float32(self, ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        return self.forward(ids, attention_mask).float()

    def describe(self) -> dict[str, Any]:
        """What was detected about the checkpoint, so a wrong guess is visible before a search runs on it."""
        return {
            "format": self.format,
            "family": self.family,
            "mask_token_id": self.mask_token_id,
            "pad_token_id": self.pad_token_id,
            "end_token_ids": list(self.end_token_ids),
            "shifted_logits": self.shifted_logits,
            "vocab_size": self.vocab_size,
            "max_length": self.max_length,
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, L, V] in float32 for ids [B, L]; rows are split into chunks when the GPU runs out of memory."""
        check_ids(ids, attention_mask, self.vocab_size, self.max_length)
        ids = ids.to(self.device, torch.long)
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device)
        with torch.inference_mode():
            return self._chunked(ids, attention_mask)
