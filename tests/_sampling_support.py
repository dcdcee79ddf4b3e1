"""Real tiny denoisers for the sampling and evaluation tests, and a wrapper that records what the model was shown.

The denoisers are real checkpoints written by the real libraries and loaded by mdmtune.models.loading; the
recorder only delegates and keeps a copy of each model call's input (to check what each step committed).
"""

from __future__ import annotations

from pathlib import Path

import torch
from _model_builders import tiny_reference

from mdmtune.models.loading import load_denoiser
from mdmtune.models.native import save_native


def native_denoiser(folder: Path, seed: int = 0, max_len: int = 32):
    """A randomly initialised reference MDM (character tokenizer, mask `_`), saved natively and loaded back."""
    model, codec = tiny_reference(seed=seed, max_len=max_len)
    save_native(model, codec, folder)
    return load_denoiser(folder, device="cpu")


class Recording:
    """Delegates to a Denoiser; `inputs` holds (ids, attention_mask) of every model call."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.mask_token_id = inner.mask_token_id
        self.pad_token_id = inner.pad_token_id
        self.vocab_size = inner.vocab_size
        self.device = inner.device
        self.codec = inner.codec
        self.max_length = getattr(inner, "max_length", None)
        self.inputs: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        self.inputs.append((ids.clone(), None if attention_mask is None else attention_mask.clone()))
        return self.inner.logits(ids, attention_mask)
