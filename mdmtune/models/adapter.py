"""The one Denoiser implementation that every checkpoint format fills in with its own forward function.

Why one class: input checks, inference mode, out-of-memory chunking and the float32 output are the same for native,
Hugging Face and TorchScript models; only "ids -> logits" differs. An adapter module loads its format and hands a
forward function here. Must never import FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
    _chunked: ChunkedForward = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._chunked = ChunkedForward(self._forward_float32, self.max_batch)

    def _forward_float32(self, ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        return self.forward(ids, attention_mask).float()

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits [B, L, V] in float32 for ids [B, L]; rows are split into chunks when the GPU runs out of memory."""
        check_ids(ids, attention_mask, self.vocab_size, self.max_length)
        ids = ids.to(self.device, torch.long)
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device)
        with torch.inference_mode():
            return self._chunked(ids, attention_mask)
