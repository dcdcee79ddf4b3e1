"""What a sampling call is told (SamplerSettings) and what it hands back (SampleOutput).

Settings are validated when they are made, so a sampler never meets an unknown mode half-way through a batch. They
are declared with every other option in mdmtune.options (torch-free, so a job spec can nest them); here they are
re-exported beside the output they produce.
Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mdmtune.options.names import (
    CONFIDENCE_DTYPES,
    DECODERS,
    MAX_CFG_SCALE,
    MAX_DECODER_STEPS,
    MAX_ENTROPY_BOUND,
    REMASKINGS,
    SAMPLERS,
)
from mdmtune.options.parts import SamplerSettings

__all__ = [
    "CONFIDENCE_DTYPES",
    "DECODERS",
    "MAX_CFG_SCALE",
    "MAX_DECODER_STEPS",
    "MAX_ENTROPY_BOUND",
    "REMASKINGS",
    "SAMPLERS",
    "SampleOutput",
    "SamplerSettings",
]


@dataclass(frozen=True)
class SampleOutput:
    """The sampled rows and what they cost.

    - ids [B, L] int64 on the CPU: the input with every generated position filled in.
    - nfe: model calls actually run by this sampling call (one call on a batch, or on the sub-batch of rows that
      commit something at that step, counts 1, however many rows it holds).
    - row_nfe [B]: the model calls each row took part in, i.e. what that row would have cost sampled alone.
    - committed_per_step [B, N]: tokens each row committed at each step (its count plan, for the count sampler).
    """

    ids: torch.Tensor
    nfe: int
    row_nfe: np.ndarray
    committed_per_step: np.ndarray
