"""What a sampling call is told (SamplerSettings) and what it hands back (SampleOutput).

Settings are validated when they are made, so a sampler never meets an unknown mode half-way through a batch.
Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from mdmtune.errors import InvalidInput
from mdmtune.option_names import (
    CONFIDENCE_DTYPES,
    DECODERS,
    MAX_CFG_SCALE,
    MAX_DECODER_STEPS,
    MAX_ENTROPY_BOUND,
    REMASKINGS,
    SAMPLERS,
)

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
class SamplerSettings:
    """How to sample; the schedule itself comes per row (alphas), not from here.

    - sampler "count" (LLaDA / MaskGIT): step k commits exactly K_k tokens of the row's count plan, chosen by
      `remasking`: low_confidence (softmax probability of the untempered logits at the chosen token, as LLaDA),
      random (a uniform draw), margin (top-1 minus top-2 probability), entropy (negative entropy of the position's
      predictive distribution). The highest scores are committed.
    - sampler "ancestral" (MDLM): every still-masked token unmasks independently with the plan's probability;
      `remasking` is ignored.
    - temperature: 0 takes the argmax token; T > 0 draws from softmax(logits / T) by float64 Gumbel-max.
    - block_length: semi-autoregressive blocks over the completion region (None: one block). Infill has no blocks.
    - cfg_scale: LLaDA's classifier-free guidance (0 = off). Each model call then also runs every row with its given
      tokens (prompt, template tokens, infill context) masked, and uses un + (cfg_scale + 1) * (cond - un); the
      call holds twice the rows and still counts as one NFE. Mixed in float32 (LLaDA mixes in the model's dtype).
    - confidence_dtype: the precision of the softmax behind the remasking score. "model" (default) takes it in the
      model's dtype, as LLaDA's current generate() does (bf16 on GPU: ties between close positions are common);
      "float64" as LLaDA's generate() did before June 2025. Token choice is float64 either way.
    - decoder: "schedule" (the plan from the per-row alphas, as above) or an adaptive decoder that decides at each
      model call how many tokens to commit (sampling/adaptive.py): "threshold" (Fast-dLLM: every masked position
      whose confidence is at least `threshold`, and at least the most confident one) or "entropy" (EB-sampler: the
      lowest-entropy positions while their entropy sum minus the largest stays within `entropy_bound`, in nats).
      `max_steps` caps the model calls per row (split evenly over blocks; the capped step commits what is left).
      "hybrid" (diffusers' BlockRefinementScheduler): the schedule's count plan is a floor; step k commits
      max(K_k, number of positions whose confidence is strictly above `threshold`), the most confident ones, and a
      block that empties early spends no call on its remaining steps (sampling/loop.py, `_hybrid_step`).
    """

    sampler: str = "count"
    remasking: str = "low_confidence"
    temperature: float = 0.0
    block_length: int | None = None
    cfg_scale: float = 0.0
    confidence_dtype: str = "model"
    decoder: str = "schedule"
    threshold: float | None = None
    entropy_bound: float | None = None
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise InvalidInput("sampler", f"{self.sampler!r} is not one of {', '.join(SAMPLERS)}")
        if self.remasking not in REMASKINGS:
            raise InvalidInput("remasking", f"{self.remasking!r} is not one of {', '.join(REMASKINGS)}")
        temperature = self.temperature
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.floating, np.integer)):
            raise InvalidInput("temperature", f"must be a number >= 0, got {temperature!r}")
        if not math.isfinite(float(temperature)) or temperature < 0:
            raise InvalidInput("temperature", f"must be a finite number >= 0, got {temperature!r}")
        scale = self.cfg_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating, np.integer)):
            raise InvalidInput("cfg_scale", f"must be a number in [0, {MAX_CFG_SCALE:g}], got {scale!r}")
        if not math.isfinite(float(scale)) or not 0 <= scale <= MAX_CFG_SCALE:
            raise InvalidInput("cfg_scale", f"must be a number in [0, {MAX_CFG_SCALE:g}], got {scale!r}")
        if self.confidence_dtype not in CONFIDENCE_DTYPES:
            raise InvalidInput(
                "confidence_dtype", f"{self.confidence_dtype!r} is not one of {', '.join(CONFIDENCE_DTYPES)}"
            )
        block = self.block_length
        if block is not None and (isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1):
            raise InvalidInput("block_length", f"must be an integer >= 1 or None, got {block!r}")
        _check_decoder(self)


def _check_decoder(settings: SamplerSettings) -> None:
    """The adaptive decoders' fields: each decoder needs its own parameter and refuses the other's."""
    decoder = settings.decoder
    if decoder not in DECODERS:
        raise InvalidInput("decoder", f"{decoder!r} is not one of {', '.join(DECODERS)}")
    wanted = {"threshold": "threshold", "entropy": "entropy_bound", "hybrid": "threshold"}.get(decoder)
    for name, high in (("threshold", 1.0), ("entropy_bound", MAX_ENTROPY_BOUND)):
        value = getattr(settings, name)
        if value is None:
            if name == wanted:
                raise InvalidInput(name, f"the {decoder} decoder needs {name}")
            continue
        if name != wanted:
            takers = "threshold and hybrid decoders take" if name == "threshold" else "entropy decoder takes"
            raise InvalidInput(name, f"only the {takers} it")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise InvalidInput(name, f"must be a number in [0, {high:g}], got {value!r}")
        if not 0 <= float(value) <= high:
            raise InvalidInput(name, f"must be a number in [0, {high:g}], got {value!r}")
    steps = settings.max_steps
    if steps is not None:
        if decoder in ("schedule", "hybrid"):
            raise InvalidInput(
                "max_steps", f"only threshold and entropy take it (the {decoder} has its schedule's steps)"
            )
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= MAX_DECODER_STEPS:
            raise InvalidInput("max_steps", f"must be an integer in [1, {MAX_DECODER_STEPS}], got {steps!r}")
    if decoder != "schedule":
        if settings.sampler != "count":
            raise InvalidInput("sampler", f"the {decoder} decoder commits by model confidence: use sampler count")
        if settings.remasking != "low_confidence":
            raise InvalidInput("remasking", f"the {decoder} decoder ranks by its own rule: leave low_confidence")


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
