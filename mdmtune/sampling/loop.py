"""The state of one sampling call (`SamplingRun`): the model call, the commit steps and the NFE accounting that the
count and ancestral samplers (mdmtune.sampling.sampler) and the adaptive decoders (mdmtune.sampling.adaptive) share.

Kept apart from both so that each imports it and neither imports the other. Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import numpy as np
import torch

from mdmtune.errors import InternalError, InvalidInput
from mdmtune.models.base import Denoiser
from mdmtune.sampling.choice import choose_tokens, confidence, top_k_per_row
from mdmtune.sampling.layout import Layout, count_plans, unmask_probabilities
from mdmtune.sampling.seeds import (
    GUMBEL_STREAM,
    UNIFORM_STREAM,
    LazyGumbel,
    seed_words,
    step_keys,
    uniform_noise,
)
from mdmtune.sampling.settings import SampleOutput, SamplerSettings


def check_ids(ids: object, denoiser: Denoiser) -> torch.Tensor:
    """`ids` as a [B, L] long tensor on the CPU, refused naming `ids` when a model call could not take it."""
    tensor = torch.as_tensor(ids).cpu()
    if tensor.dim() != 2 or tensor.shape[0] < 1 or tensor.shape[1] < 1:
        raise InvalidInput("ids", f"must have shape [B, L] with B, L >= 1, got {tuple(tensor.shape)}")
    if tensor.dtype.is_floating_point or tensor.dtype == torch.bool:
        raise InvalidInput("ids", f"must hold integer token ids, got {tensor.dtype}")
    if int(tensor.min()) < 0 or int(tensor.max()) >= denoiser.vocab_size:
        raise InvalidInput("ids", f"token ids must lie in [0, {denoiser.vocab_size})")
    return tensor.long()


class SamplingRun:
    """The state of one sampling call; one method per sampler step kind."""

    def __init__(
        self,
        denoiser: Denoiser,
        ids: torch.Tensor,
        alphas: np.ndarray,
        settings: SamplerSettings,
        seeds: list[int],
        layout: Layout,
        attention_mask: torch.Tensor | None,
    ) -> None:
        self.denoiser = denoiser
        self.device = torch.device(denoiser.device)
        self.mask_id = denoiser.mask_token_id
        self.settings = settings
        self.seed_words = seed_words(seeds, self.device)
        self.layout = layout
        self.x = ids.to(self.device).clone()
        self.attention = None if attention_mask is None else attention_mask.to(self.device)
        self.block_of = layout.block_of.to(self.device)
        self.slot_device = layout.slot.to(self.device)
        self.steps = alphas.shape[1] - 1
        self.plan = count_plans(alphas, layout) if settings.sampler == "count" else unmask_probabilities(alphas, layout)
        self.confidence_dtype = (
            torch.float64 if settings.confidence_dtype == "float64" else getattr(denoiser, "dtype", torch.float32)
        )
        real = torch.ones_like(self.x, dtype=torch.bool) if self.attention is None else self.attention.bool()
        self.given = (self.x != self.mask_id) & real
        """Positions the model conditions on (prompt, template tokens, infill context): masked for cfg's
        unconditional pass, as LLaDA masks its prompt."""
        self.nfe = 0
        self.row_nfe = np.zeros(ids.shape[0], dtype=np.int64)
        self.committed = np.zeros((ids.shape[0], self.steps), dtype=np.int64)
        self.thresholds: np.ndarray | None = None
        """Per-row tau of the hybrid decoder (set by sampler.sample_hybrid); None for the count and ancestral loop."""

    def run(self) -> SampleOutput:
        for step in range(self.steps):
            block = step // self.layout.steps_per_block
            open_positions = (self.block_of == block) & (self.x == self.mask_id)
            if self.thresholds is not None:
                self._hybrid_step(step, open_positions)
            elif self.settings.sampler == "count":
                self._count_step(step, open_positions)
            else:
                self._ancestral_step(step, open_positions)
        if bool(((self.block_of >= 0) & (self.x == self.mask_id)).any()):
            raise InternalError("a generated position is still masked after the last step")
        return SampleOutput(self.x.cpu(), self.nfe, self.row_nfe, self.committed)

    def _count_step(self, step: int, open_positions: torch.Tensor) -> None:
        counts = self.plan[:, step]
        active = np.flatnonzero(counts > 0)
        if active.size == 0:
            return
        rows = torch.as_tensor(active, device=self.device)
        candidates = open_positions[rows]
        wanted = torch.as_tensor(counts[active], device=self.device)
        if bool((candidates.sum(dim=1) < wanted).any()):
            raise InternalError(f"step {step}: the plan commits more tokens than are still masked")
        logits = self._forward(active, rows)
        local, positions = candidates.nonzero(as_tuple=True)
        owners = rows[local]
        picked_logits = logits[local, positions]
        temperature, remasking = self.settings.temperature, self.settings.remasking
        tokens = None
        if remasking == "low_confidence":
            gumbel = self._gumbel(owners, positions, step)
            tokens = choose_tokens(picked_logits, temperature, gumbel, self.mask_id)
            scores = confidence(picked_logits, tokens, remasking, self.confidence_dtype)
        elif remasking == "random":
            scores = self._uniforms(owners, positions, step)
        else:
            scores = confidence(picked_logits, None, remasking, self.confidence_dtype)
        table = torch.full(candidates.shape, -torch.inf, dtype=torch.float64, device=self.device)
        table[local, positions] = scores
        chosen = top_k_per_row(table, wanted)[local, positions]
        if tokens is None:
            gumbel = self._gumbel(owners[chosen], positions[chosen], step)
            tokens = choose_tokens(picked_logits[chosen], temperature, gumbel, self.mask_id)
        else:
            tokens = tokens[chosen]
        self.x[owners[chosen], positions[chosen]] = tokens
        self.committed[active, step] = counts[active]

    def _hybrid_step(self, step: int, open_positions: torch.Tensor) -> None:
        """diffusers' BlockRefinementScheduler: commit max(K_k, #confidence > tau) of the open positions, the most
        confident ones (the plan is a floor). A row whose block is already empty sits the step out (no call); so does
        a row whose floor is 0 and whose tau is 1 (nothing can be strictly above 1: the step is known to commit
        nothing, as the count sampler skips its zero steps). Noise is addressed by the step index, as the count
        sampler's, so tau = 1 gives the count sampler's tokens and calls exactly."""
        assert self.thresholds is not None
        floor = self.plan[:, step]
        remaining = open_positions.sum(dim=1).cpu().numpy()
        active = np.flatnonzero((remaining > 0) & ((floor > 0) | (self.thresholds < 1.0)))
        if active.size == 0:
            return
        rows = torch.as_tensor(active, device=self.device)
        candidates = open_positions[rows]
        logits = self._forward(active, rows)
        local, positions = candidates.nonzero(as_tuple=True)
        owners = rows[local]
        picked_logits = logits[local, positions]
        tokens = choose_tokens(
            picked_logits, self.settings.temperature, self._gumbel(owners, positions, step), self.mask_id
        )
        scores = confidence(picked_logits, tokens, "low_confidence", self.confidence_dtype)
        tau = torch.as_tensor(self.thresholds[active], dtype=torch.float64, device=self.device)
        above = torch.zeros(active.size, dtype=torch.long, device=self.device).index_add_(
            0, local, (scores > tau[local]).long()
        )
        floor_rows = torch.as_tensor(np.minimum(floor[active], remaining[active]), device=self.device)
        wanted = torch.maximum(floor_rows, above)
        table = torch.full(candidates.shape, -torch.inf, dtype=torch.float64, device=self.device)
        table[local, positions] = scores
        chosen = top_k_per_row(table, wanted)[local, positions]
        self.x[owners[chosen], positions[chosen]] = tokens[chosen]
        self.committed[active, step] = wanted.cpu().numpy()

    def _ancestral_step(self, step: int, open_positions: torch.Tensor) -> None:
        owners, positions = open_positions.nonzero(as_tuple=True)
        if owners.numel() == 0:
            return
        chance = torch.as_tensor(self.plan[:, step], device=self.device)
        unmask = self._uniforms(owners, positions, step) < chance[owners]
        owners, positions = owners[unmask], positions[unmask]
        per_row = torch.zeros(self.x.shape[0], dtype=torch.long, device=self.device).index_add_(
            0, owners, torch.ones_like(owners)
        )
        committed = per_row.cpu().numpy()
        active = np.flatnonzero(committed > 0)
        if active.size == 0:
            return
        rows = torch.as_tensor(active, device=self.device)
        local = torch.full((self.x.shape[0],), -1, dtype=torch.long, device=self.device)
        local[rows] = torch.arange(active.size, device=self.device)
        logits = self._forward(active, rows)
        gumbel = self._gumbel(owners, positions, step)
        self.x[owners, positions] = choose_tokens(
            logits[local[owners], positions], self.settings.temperature, gumbel, self.mask_id
        )
        self.committed[active, step] = committed[active]

    def _forward(self, active: np.ndarray, rows: torch.Tensor) -> torch.Tensor:
        """Logits of the active rows only; one NFE."""
        whole = active.size == self.x.shape[0]
        ids = self.x if whole else self.x[rows]
        attention = None if self.attention is None else (self.attention if whole else self.attention[rows])
        logits = self._guided(ids, attention, self.given if whole else self.given[rows])
        expected = (*ids.shape, self.denoiser.vocab_size)
        if tuple(logits.shape) != expected:
            raise InternalError(f"the denoiser returned logits of shape {tuple(logits.shape)}, expected {expected}")
        self.nfe += 1
        self.row_nfe[active] += 1
        return logits

    def _guided(self, ids: torch.Tensor, attention: torch.Tensor | None, given: torch.Tensor) -> torch.Tensor:
        """The model's logits, or with cfg_scale > 0 LLaDA's guided mix of them with the prompt-masked pass."""
        scale = float(self.settings.cfg_scale)
        if scale == 0:
            return self.denoiser.logits(ids, attention)
        unconditional = torch.where(given, torch.full_like(ids, self.mask_id), ids)
        both = torch.cat([ids, unconditional])
        mask = None if attention is None else torch.cat([attention, attention])
        conditional, free = self.denoiser.logits(both, mask).chunk(2)
        return free + (scale + 1) * (conditional - free)

    def _uniforms(self, owners: torch.Tensor, positions: torch.Tensor, step: int) -> torch.Tensor:
        """One uniform per (row, position) pair, addressed by the position's slot (see seeds.py): float64 [n]."""
        keys = step_keys(self.seed_words, step, UNIFORM_STREAM)[owners]
        return uniform_noise(keys, self.slot_device[owners, positions])

    def _gumbel(self, owners: torch.Tensor, positions: torch.Tensor, step: int) -> LazyGumbel | None:
        """Gumbel noise [n, V] for the pairs (None at temperature 0), computed only where a token is drawn."""
        if self.settings.temperature == 0:
            return None
        keys = step_keys(self.seed_words, step, GUMBEL_STREAM)[owners]
        return LazyGumbel(keys, self.slot_device[owners, positions], self.denoiser.vocab_size)
