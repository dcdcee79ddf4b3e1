"""Adaptive decoders: how many tokens to commit is decided at each model call from the model's own certainty.

The rivals of a fixed N-step schedule that practitioners use:
- threshold (Fast-dLLM, arXiv 2505.22618, `get_transfer_index` with `threshold`): commit every still-masked window
  position whose confidence (the untempered softmax probability of its chosen token, as LLaDA's low_confidence) is
  at least tau, and always the most confident one, so every call makes progress.
- entropy (EB-sampler, arXiv 2505.24857): sort the window's masked positions by the entropy of their predictive
  distribution (ascending) and commit the longest prefix whose entropy sum minus its largest entropy is at most
  gamma; the first position always qualifies (its sum minus its maximum is 0).
Both run batched with one threshold (or bound) per row, so one batch can score many thresholds on many records.
Semi-AR blocks (LLaDA): a row works on its first block with masks left; a block closes when it is filled, and the
row moves on. `max_steps` caps the calls: each block gets max_steps // n_blocks, and the block's last allowed call
commits whatever is left in it. A row whose generated positions are all filled leaves the batch, and with
`max_batch` the next waiting row takes its place.
Noise: the same counter-based streams as the count sampler (seeds.py), addressed by (row seed, the row's own call
index, stream, slot), so a row's draws never depend on its batch-mates; at temperature 0 nothing is drawn.
NFE: `nfe` counts model calls, `row_nfe[r]` the calls row r took part in (its cost sampled alone).
Both are commit rules of the one sampling loop (loop.py), so the model call, guidance, dtype, block walk and NFE
accounting are the count sampler's. Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from mdmtune.core.plans import check_blocks
from mdmtune.errors import InvalidInput
from mdmtune.models.base import Denoiser
from mdmtune.sampling.layout import Layout, build_layout
from mdmtune.sampling.loop import Call, CallHook, SamplingLoop, check_inputs, row_values
from mdmtune.sampling.settings import SampleOutput, SamplerSettings


def sample_adaptive(
    denoiser: Denoiser,
    ids: torch.Tensor,
    settings: SamplerSettings,
    seeds: list[int] | np.ndarray,
    gen_region: tuple[int, int] | None = None,
    attention_mask: torch.Tensor | None = None,
    parameters: np.ndarray | list[float] | None = None,
    max_batch: int | None = None,
    on_call: CallHook | None = None,
) -> SampleOutput:
    """Fill every masked position of `ids` [B, L] with the settings' adaptive decoder.

    parameters [B]: each row's threshold (threshold decoder) or entropy bound (entropy decoder); None: the settings'
    value for every row. max_batch: at most this many rows per model call; the others wait in row order and take
    the place of a row as soon as it finishes (continuous batching: rows need different numbers of calls, so
    fixed batches would run at the pace of their slowest row). on_call(rows finished, rows) after every call; raising
    from it stops the sampling. Other arguments as mdmtune.sampling.sample.
    """
    if settings.decoder not in ("threshold", "entropy"):
        raise InvalidInput("decoder", f"sample_adaptive runs threshold or entropy, not {settings.decoder!r}")
    ids, row_seeds, attention_mask = check_inputs(denoiser, ids, seeds, attention_mask)
    name = "threshold" if settings.decoder == "threshold" else "entropy_bound"
    high = 1.0 if name == "threshold" else float("inf")
    values = row_values(name, parameters, getattr(settings, name), high, ids.shape[0])
    n_blocks = _block_count(gen_region, settings.block_length)
    per_block = _calls_per_block(ids, denoiser.mask_token_id, n_blocks, settings, gen_region)
    layout = build_layout(ids, denoiser.mask_token_id, gen_region, settings.block_length, n_blocks * per_block)
    if max_batch is not None and (isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1):
        raise InvalidInput("max_batch", f"must be an integer >= 1 or None, got {max_batch!r}")
    kind = _ThresholdRule if settings.decoder == "threshold" else _EntropyRule
    rule = kind(values, layout, per_block, max_batch or ids.shape[0])
    return SamplingLoop(denoiser, ids, settings, row_seeds, layout, attention_mask, rule).run(on_call)


def _block_count(gen_region: tuple[int, int] | None, block_length: int | None) -> int:
    if gen_region is None or block_length is None:
        return 1
    length = int(gen_region[1])
    return check_blocks(length, block_length, max(1, length // block_length))


def _calls_per_block(
    ids: torch.Tensor, mask_id: int, n_blocks: int, settings: SamplerSettings, gen_region: tuple[int, int] | None
) -> int:
    """The cap on calls inside one block: max_steps // n_blocks, or (no cap) the most a block can need (one call per
    masked position of the largest block)."""
    if settings.max_steps is None:
        if gen_region is not None and settings.block_length is not None:
            return settings.block_length
        return max(1, int((ids == mask_id).sum(dim=1).max()))
    if settings.max_steps < n_blocks:
        raise InvalidInput("max_steps", f"must be at least the number of blocks {n_blocks}, got {settings.max_steps}")
    return settings.max_steps // n_blocks


class _AdaptiveRule(ABC):
    """Every unfinished row takes part in each call (the first max_batch of them), on its own current block; its
    own call index addresses its noise and its committed_per_step column. A block's last allowed call commits
    whatever is left in it."""

    own_clock = True

    def __init__(self, values: np.ndarray, layout: Layout, per_block: int, max_batch: int) -> None:
        self.values, self.per_block, self.max_batch = values, per_block, max_batch
        self.columns = layout.n_blocks * per_block

    def rows(self, loop: SamplingLoop, tick: int) -> np.ndarray | None:
        waiting = loop.unfinished()
        return None if waiting.size == 0 else waiting[: self.max_batch]

    def select(self, call: Call) -> torch.Tensor:
        device = call.candidates.device
        values = torch.as_tensor(self.values[call.rows], dtype=torch.float64, device=device)
        last_call = torch.as_tensor(call.loop.block_calls[call.rows] == self.per_block - 1, device=device)
        return self.accept(call, values) | last_call[call.local]

    @abstractmethod
    def accept(self, call: Call, values: torch.Tensor) -> torch.Tensor:
        """Which candidates of each row this decoder commits now, given each row's parameter (`values`)."""


class _ThresholdRule(_AdaptiveRule):
    def accept(self, call: Call, values: torch.Tensor) -> torch.Tensor:
        """Fast-dLLM: confidence >= tau, and the most confident position of each row whatever its confidence."""
        scores = call.confidence("low_confidence")
        table = call.table(scores, -torch.inf)
        best = call.positions == table.argmax(dim=1)[call.local]  # the first of tied maxima, as the count sampler
        return best | (scores >= values[call.local])


class _EntropyRule(_AdaptiveRule):
    def accept(self, call: Call, values: torch.Tensor) -> torch.Tensor:
        """EB-sampler: ascending entropies; the longest prefix with sum - max <= gamma (at least one position)."""
        table = call.table(-call.confidence("entropy"), torch.inf)
        ordered, order = torch.sort(table, dim=1, stable=True)
        valid = torch.isfinite(ordered)
        running = torch.cumsum(torch.where(valid, ordered, 0.0), dim=1)
        keep = valid & (running - torch.where(valid, ordered, 0.0) <= values[:, None])
        keep[:, 0] = valid[:, 0]
        accepted = torch.zeros_like(keep).scatter_(1, order, keep)
        return accepted[call.local, call.positions]
