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
The model call itself is the count sampler's (`SamplingRun._forward`), so whatever that applies (guidance,
dtype) applies here too. Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from mdmtune.errors import InternalError, InvalidInput
from mdmtune.models.base import Denoiser
from mdmtune.plans import check_blocks
from mdmtune.sampling.choice import choose_tokens, confidence
from mdmtune.sampling.layout import build_layout
from mdmtune.sampling.loop import SamplingRun, check_ids
from mdmtune.sampling.seeds import check_seeds
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
    on_call: Callable[[int, int], None] | None = None,
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
    ids = check_ids(ids, denoiser)
    rows = ids.shape[0]
    row_seeds = check_seeds(seeds, rows)
    values = _row_parameters(settings, parameters, rows)
    if attention_mask is not None and tuple(attention_mask.shape) != tuple(ids.shape):
        raise InvalidInput("attention_mask", f"shape {tuple(attention_mask.shape)} differs from ids {tuple(ids.shape)}")
    n_blocks = _block_count(ids, gen_region, settings.block_length)
    per_block = _calls_per_block(ids, denoiser.mask_token_id, n_blocks, settings, gen_region)
    layout = build_layout(ids, denoiser.mask_token_id, gen_region, settings.block_length, n_blocks * per_block)
    placeholder = np.tile(np.linspace(0.0, 1.0, n_blocks * per_block + 1), (rows, 1))
    if max_batch is not None and (isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1):
        raise InvalidInput("max_batch", f"must be an integer >= 1 or None, got {max_batch!r}")
    run = _AdaptiveRun(denoiser, ids, placeholder, settings, row_seeds, layout, attention_mask)
    return run.decode(values, per_block, max_batch or rows, on_call)


def _row_parameters(settings: SamplerSettings, parameters: object, rows: int) -> np.ndarray:
    name = "threshold" if settings.decoder == "threshold" else "entropy_bound"
    high = 1.0 if name == "threshold" else float("inf")
    if parameters is None:
        return np.full(rows, float(getattr(settings, name)))
    values = np.asarray(parameters, dtype=np.float64).reshape(-1)
    if values.size != rows or not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values > high):
        raise InvalidInput(name, f"need one value per row ({rows}) in [0, {high:g}]")
    return values


def _block_count(ids: torch.Tensor, gen_region: tuple[int, int] | None, block_length: int | None) -> int:
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


class _AdaptiveRun(SamplingRun):
    """The count sampler's state (model call, noise, layout) driven by an adaptive rule instead of a plan.

    The base class is built with a placeholder schedule so that every attribute its model call relies on exists;
    the count plan it derives from it is never read.
    """

    def decode(
        self, values: np.ndarray, per_block: int, max_batch: int, on_call: Callable[[int, int], None] | None
    ) -> SampleOutput:
        rows = self.x.shape[0]
        self.values = torch.as_tensor(values, dtype=torch.float64, device=self.device)
        self.block = torch.zeros(rows, dtype=torch.long, device=self.device)
        self.calls_in_block = torch.zeros(rows, dtype=torch.long, device=self.device)
        self.calls = torch.zeros(rows, dtype=torch.long, device=self.device)
        self.committed = np.zeros((rows, self.layout.n_blocks * per_block), dtype=np.int64)
        self._advance_blocks()
        while True:
            waiting = np.flatnonzero((self.block < self.layout.n_blocks).cpu().numpy())
            if waiting.size == 0:
                break
            self._step(waiting[:max_batch], per_block)
            self._advance_blocks()
            if on_call is not None:
                on_call(rows - int((self.block < self.layout.n_blocks).sum()), rows)
        if bool(((self.block_of >= 0) & (self.x == self.mask_id)).any()):
            raise InternalError("a generated position is still masked after the last call")
        return SampleOutput(self.x.cpu(), self.nfe, self.row_nfe, self.committed)

    def _open(self, rows: torch.Tensor) -> torch.Tensor:
        """[b, L]: still-masked positions of each row's current block."""
        return (self.block_of[rows] == self.block[rows, None]) & (self.x[rows] == self.mask_id)

    def _advance_blocks(self) -> None:
        """Close every filled block; a row with no block left is finished and leaves the batch."""
        everyone = torch.arange(self.x.shape[0], device=self.device)
        while True:
            waiting = self.block < self.layout.n_blocks
            filled = waiting & ~self._open(everyone).any(dim=1)
            if not bool(filled.any()):
                return
            self.block[filled] += 1
            self.calls_in_block[filled] = 0

    def _step(self, active: np.ndarray, per_block: int) -> None:
        rows = torch.as_tensor(active, device=self.device)
        candidates = self._open(rows)
        step_index = self.calls[rows].cpu().numpy()
        logits = self._forward(active, rows)
        local, positions = candidates.nonzero(as_tuple=True)
        owners = rows[local]
        picked = logits[local, positions]
        gumbel = self._gumbel(owners, positions, self.calls)  # type: ignore[arg-type]  # each row's own call index
        tokens = choose_tokens(picked, self.settings.temperature, gumbel, self.mask_id)
        if self.settings.decoder == "threshold":
            take = self._threshold_rule(candidates, local, positions, picked, tokens, rows)
        else:
            take = self._entropy_rule(candidates, local, positions, picked, rows)
        last_call = (self.calls_in_block[rows] == per_block - 1)[local]
        take = take | last_call
        self.x[owners[take], positions[take]] = tokens[take]
        counts = torch.zeros(active.size, dtype=torch.long, device=self.device).index_add_(
            0, local[take], torch.ones_like(local[take])
        )
        self.committed[active, step_index] = counts.cpu().numpy()
        self.calls[rows] += 1
        self.calls_in_block[rows] += 1

    def _confidence(self, picked: torch.Tensor, tokens: torch.Tensor | None, remasking: str) -> torch.Tensor:
        """choice.confidence in the softmax dtype the settings chose (confidence_dtype), as the count sampler."""
        return confidence(picked, tokens, remasking, self.confidence_dtype)

    def _threshold_rule(self, candidates, local, positions, picked, tokens, rows) -> torch.Tensor:
        """Fast-dLLM: confidence >= tau, and the most confident position of each row whatever its confidence."""
        scores = self._confidence(picked, tokens, "low_confidence")
        table = torch.full(candidates.shape, -torch.inf, dtype=torch.float64, device=self.device)
        table[local, positions] = scores
        best = positions == table.argmax(dim=1)[local]  # argmax takes the first of tied maxima, as the count sampler
        return best | (scores >= self.values[rows][local])

    def _entropy_rule(self, candidates, local, positions, picked, rows) -> torch.Tensor:
        """EB-sampler: ascending entropies; the longest prefix with sum - max <= gamma (at least one position)."""
        entropy = -self._confidence(picked, None, "entropy")
        table = torch.full(candidates.shape, torch.inf, dtype=torch.float64, device=self.device)
        table[local, positions] = entropy
        ordered, order = torch.sort(table, dim=1, stable=True)
        valid = torch.isfinite(ordered)
        running = torch.cumsum(torch.where(valid, ordered, 0.0), dim=1)
        keep = valid & (running - torch.where(valid, ordered, 0.0) <= self.values[rows][:, None])
        keep[:, 0] = valid[:, 0]
        accepted = torch.zeros_like(keep).scatter_(1, order, keep)
        return accepted[local, positions]
