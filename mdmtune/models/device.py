"""Where a model runs and in what precision, and a forward pass that survives running out of GPU memory.

Every adapter uses the same three helpers so that "CUDA when present, bf16 where supported, float32 on CPU" and
"halve the batch on out-of-memory" are decided once. Must never import FastAPI or
SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mdmtune.errors import InvalidInput

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """None or "auto": CUDA when present, else CPU. An explicit CUDA device without CUDA is bad input."""
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise InvalidInput("device", f"{device!r} is not a torch device ({error})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInput("device", f"{device!r} asked for, but CUDA is not available here")
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """None: bfloat16 on a CUDA device that supports it, float32 otherwise (CPU bf16 is slow and imprecise)."""
    if dtype is None or dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise InvalidInput("dtype", f"{dtype!r} is not one of {sorted(_DTYPES)}")
    return _DTYPES[dtype]


class ChunkedForward:
    """Runs a logits function over the batch in chunks, halving the chunk on CUDA out-of-memory.

    The chunk that worked is remembered, so after one OOM the later calls do not pay for the failure again.
    A chunk of one row that still runs out of memory is re-raised: nothing smaller can help.
    """

    def __init__(self, forward: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], max_batch: int = 1024):
        if max_batch < 1:
            raise InvalidInput("max_batch", f"must be >= 1, got {max_batch}")
        self.forward = forward
        self.chunk = max_batch

    def __call__(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        parts: list[torch.Tensor] = []
        start = 0
        while start < ids.shape[0]:
            stop = start + self.chunk
            mask = None if attention_mask is None else attention_mask[start:stop]
            try:
                parts.append(self.forward(ids[start:stop], mask))
            except torch.cuda.OutOfMemoryError:
                if self.chunk == 1:
                    raise
                self.chunk = max(1, min(self.chunk, ids.shape[0] - start) // 2)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            start = stop
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=0)


def check_ids(ids: torch.Tensor, attention_mask: torch.Tensor | None, vocab_size: int, max_length: int | None) -> None:
    """Refuse ids a model cannot take, with a message a sampler author can act on."""
    if ids.dim() != 2:
        raise InvalidInput("ids", f"must have shape [B, L], got {tuple(ids.shape)}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise InvalidInput("ids", f"must be an integer tensor, got {ids.dtype}")
    if max_length is not None and ids.shape[1] > max_length:
        raise InvalidInput("ids", f"length {ids.shape[1]} is over the model's maximum {max_length}")
    if ids.numel() and bool(((ids < 0) | (ids >= vocab_size)).any()):  # one device sync, not two
        raise InvalidInput("ids", f"token ids must lie in [0, {vocab_size})")
    if attention_mask is not None and attention_mask.shape != ids.shape:
        raise InvalidInput("attention_mask", f"shape {tuple(attention_mask.shape)} differs from ids {tuple(ids.shape)}")
