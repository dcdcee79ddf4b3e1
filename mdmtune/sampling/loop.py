"""The one sampling loop (`SamplingLoop`): the model call, the block walk, the token choice and the NFE accounting,
with a pluggable commit rule (mdmtune.sampling.rules) deciding who takes part in each call and what it commits.

The split follows diffusers' pipelines and schedulers: the loop owns everything every sampler does the same way, a
rule only the decision, so the count and ancestral samplers, the hybrid and the adaptive decoders differ in their
rule alone. Each call:
1. the rule names the rows that take part (`CommitRule.rows`); an empty set makes no model call (a step at which no
   row commits anything costs nothing), None ends the sampling;
2. the loop gathers each active row's candidates (the still-masked positions of its current block) and runs the
   model on the active rows only (one NFE; cfg doubles the rows, not the count);
3. the rule picks which candidates are committed (`CommitRule.select`), from confidences, noise or its own plan;
4. the loop writes their tokens, records the counts, and walks the blocks: each row's open (still-masked) count per
   block is kept incrementally, and a row moves to its next block as soon as the current one is filled.

Noise is addressed by a step index: the loop's tick (shared by every row) for the schedule rules, or the row's own
call index for the adaptive ones, so a row's draws never depend on its batch-mates (seeds.py). Tokens are drawn only
where they are needed: a rule that ranks by something else than the chosen token's probability draws only the
committed ones. Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch

from mdmtune.errors import InternalError, InvalidInput
from mdmtune.models.base import Denoiser
from mdmtune.sampling.choice import choose_tokens, confidence
from mdmtune.sampling.layout import Layout
from mdmtune.sampling.seeds import (
    GUMBEL_STREAM,
    UNIFORM_STREAM,
    LazyGumbel,
    check_seeds,
    seed_words,
    step_keys,
    uniform_noise,
)
from mdmtune.sampling.settings import SampleOutput, SamplerSettings

__all__ = ["Call", "CallHook", "CommitRule", "SamplingLoop", "check_ids", "check_inputs", "row_values"]

CallHook = Callable[[int, int], None]
"""on_call(rows finished, rows) after every model call; raising from it stops the sampling."""


class CommitRule(Protocol):
    """What a sampler decides; everything else is the loop's.

    own_clock: False: the step index (noise and committed_per_step column) is the loop's tick, the same for every
    row (schedule rules: step k of the plan); True: it is the row's own call index (adaptive rules).
    columns: the width of committed_per_step.
    """

    own_clock: bool
    columns: int

    def rows(self, loop: SamplingLoop, tick: int) -> np.ndarray | None:
        """The rows taking part in this tick's call (ascending; empty: no call this tick), or None when done."""
        ...

    def select(self, call: Call) -> torch.Tensor:
        """Boolean [n] over the call's candidates (call.owners, call.positions): the ones committed now."""
        ...


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


def check_inputs(
    denoiser: Denoiser, ids: object, seeds: object, attention_mask: torch.Tensor | None
) -> tuple[torch.Tensor, list[int], torch.Tensor | None]:
    """What every sampling entry point checks first: ids, one seed per row, an attention mask shaped as ids."""
    tensor = check_ids(ids, denoiser)
    row_seeds = check_seeds(seeds, tensor.shape[0])
    if attention_mask is not None and tuple(attention_mask.shape) != tuple(tensor.shape):
        raise InvalidInput(
            "attention_mask", f"shape {tuple(attention_mask.shape)} differs from ids {tuple(tensor.shape)}"
        )
    return tensor, row_seeds, attention_mask


def row_values(field: str, values: object, default: float, high: float, rows: int) -> np.ndarray:
    """One value per row in [0, high] (a decoder's threshold or entropy bound); `default` for every row if None."""
    if values is None:
        return np.full(rows, float(default))
    out = np.asarray(values, dtype=np.float64).reshape(-1)
    if out.size != rows or not np.all(np.isfinite(out)) or np.any((out < 0) | (out > high)):
        raise InvalidInput(field, f"need one value per row ({rows}) in [0, {high:g}]")
    return out


class SamplingLoop:
    """The state of one sampling call, walked by `run` under one commit rule."""

    def __init__(
        self,
        denoiser: Denoiser,
        ids: torch.Tensor,
        settings: SamplerSettings,
        seeds: list[int],
        layout: Layout,
        attention_mask: torch.Tensor | None,
        rule: CommitRule,
    ) -> None:
        self.denoiser, self.settings, self.layout, self.rule = denoiser, settings, layout, rule
        self.device = torch.device(denoiser.device)
        self.mask_id = denoiser.mask_token_id
        self.seed_words = seed_words(seeds, self.device)
        self.x = ids.to(self.device).clone()
        self.attention = None if attention_mask is None else attention_mask.to(self.device)
        self.block_of = layout.block_of.to(self.device)
        self.slot = layout.slot.to(self.device)
        self.confidence_dtype = (
            torch.float64 if settings.confidence_dtype == "float64" else getattr(denoiser, "dtype", torch.float32)
        )
        real = torch.ones_like(self.x, dtype=torch.bool) if self.attention is None else self.attention.bool()
        self.given = (self.x != self.mask_id) & real
        """Positions the model conditions on (prompt, template tokens, infill context): masked for cfg's
        unconditional pass, as LLaDA masks its prompt."""
        rows = ids.shape[0]
        self.open = layout.masked.copy()
        """[B, n_blocks]: still-masked positions per row and block, counted down as tokens are committed."""
        self.block = np.zeros(rows, dtype=np.int64)
        """Each row's current block: its first block with a position left (n_blocks: the row is finished)."""
        self.block_calls = np.zeros(rows, dtype=np.int64)
        """Calls each row has taken part in since it entered its current block."""
        self.nfe = 0
        self.row_nfe = np.zeros(rows, dtype=np.int64)
        self.committed = np.zeros((rows, rule.columns), dtype=np.int64)

    def run(self, on_call: CallHook | None = None) -> SampleOutput:
        rows = self.x.shape[0]
        self._walk(np.arange(rows))
        tick = 0
        while (active := self.rule.rows(self, tick)) is not None:
            if active.size:
                self._call(active, tick)
                if on_call is not None:
                    on_call(int((self.block >= self.layout.n_blocks).sum()), rows)
            tick += 1
        if bool(((self.block_of >= 0) & (self.x == self.mask_id)).any()):
            raise InternalError("a generated position is still masked after the last call")
        return SampleOutput(self.x.cpu(), self.nfe, self.row_nfe, self.committed)

    def unfinished(self) -> np.ndarray:
        """The rows with a block left, ascending."""
        return np.flatnonzero(self.block < self.layout.n_blocks)

    def _call(self, active: np.ndarray, tick: int) -> None:
        """One model call on the active rows, the rule's commits written, the blocks walked."""
        steps = self.row_nfe.copy() if self.rule.own_clock else None
        index = torch.as_tensor(active, device=self.device)
        window = torch.as_tensor(self.block[active], device=self.device)
        candidates = (self.block_of[index] == window[:, None]) & (self.x[index] == self.mask_id)
        logits = self._forward(active, index)
        noise_step = tick if steps is None else torch.as_tensor(steps, device=self.device)
        call = Call(self, active, index, candidates, logits, noise_step, tick)
        take = self.rule.select(call)
        self.x[call.owners[take], call.positions[take]] = call.tokens_at(take)
        counts = call.per_row(take).cpu().numpy()
        self.committed[active, tick if steps is None else steps[active]] = counts
        self.open[active, self.block[active]] -= counts
        self.block_calls[active] += 1
        self._walk(active)

    def _walk(self, rows: np.ndarray) -> None:
        """Move each of `rows` past its filled blocks (its open counts say which, nothing is rescanned)."""
        while True:
            live = rows[self.block[rows] < self.layout.n_blocks]
            filled = live[self.open[live, self.block[live]] == 0]
            if filled.size == 0:
                return
            self.block[filled] += 1
            self.block_calls[filled] = 0

    def _forward(self, active: np.ndarray, index: torch.Tensor) -> torch.Tensor:
        """Logits of the active rows only; one NFE."""
        whole = active.size == self.x.shape[0]
        ids = self.x if whole else self.x[index]
        attention = None if self.attention is None else (self.attention if whole else self.attention[index])
        logits = self._guided(ids, attention, self.given if whole else self.given[index])
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

    def uniforms(self, owners: torch.Tensor, positions: torch.Tensor, step: int | torch.Tensor) -> torch.Tensor:
        """One uniform per (row, position) pair, addressed by the position's slot (see seeds.py): float64 [n]."""
        keys = step_keys(self.seed_words, step, UNIFORM_STREAM)[owners]
        return uniform_noise(keys, self.slot[owners, positions])

    def gumbel(self, owners: torch.Tensor, positions: torch.Tensor, step: int | torch.Tensor) -> LazyGumbel | None:
        """Gumbel noise [n, V] for the pairs (None at temperature 0), computed only where a token is drawn."""
        if self.settings.temperature == 0:
            return None
        keys = step_keys(self.seed_words, step, GUMBEL_STREAM)[owners]
        return LazyGumbel(keys, self.slot[owners, positions], self.denoiser.vocab_size)


class Call:
    """One model call as a rule sees it: the active rows, their candidates and what the logits say about them.

    Candidates are the pairs (owners[i], positions[i]), row-major; local[i] is the owner's index among the active
    rows. Tokens and confidences are computed on first use and kept, so a rule pays only for what it reads.
    """

    def __init__(
        self,
        loop: SamplingLoop,
        rows: np.ndarray,
        index: torch.Tensor,
        candidates: torch.Tensor,
        logits: torch.Tensor,
        step: int | torch.Tensor,
        tick: int,
    ) -> None:
        self.loop, self.rows, self.index, self.candidates, self.logits = loop, rows, index, candidates, logits
        self.step, self.tick = step, tick
        self.local, self.positions = candidates.nonzero(as_tuple=True)
        self.owners = index[self.local]
        self._picked: torch.Tensor | None = None
        self._tokens: torch.Tensor | None = None

    def picked(self) -> torch.Tensor:
        """Logits of every candidate, [n, V]."""
        if self._picked is None:
            self._picked = self.logits[self.local, self.positions]
        return self._picked

    def tokens(self) -> torch.Tensor:
        """The token every candidate would take, [n] (Gumbel-max at the settings' temperature)."""
        if self._tokens is None:
            self._tokens = self._choose(self.picked(), self.owners, self.positions)
        return self._tokens

    def tokens_at(self, take: torch.Tensor) -> torch.Tensor:
        """The tokens of the candidates in `take`, drawn only for them unless all were drawn already."""
        if self._tokens is not None:
            return self._tokens[take]
        picked = (
            self.picked()[take] if self._picked is not None else self.logits[self.local[take], self.positions[take]]
        )
        return self._choose(picked, self.owners[take], self.positions[take])

    def _choose(self, picked: torch.Tensor, owners: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        gumbel = self.loop.gumbel(owners, positions, self.step)
        return choose_tokens(picked, self.loop.settings.temperature, gumbel, self.loop.mask_id)

    def confidence(self, remasking: str) -> torch.Tensor:
        """choice.confidence of every candidate in the settings' softmax dtype (low_confidence draws the tokens)."""
        tokens = self.tokens() if remasking == "low_confidence" else None
        return confidence(self.picked(), tokens, remasking, self.loop.confidence_dtype)

    def uniforms(self) -> torch.Tensor:
        """One uniform per candidate (the random remasking score)."""
        return self.loop.uniforms(self.owners, self.positions, self.step)

    def table(self, values: torch.Tensor, fill: float) -> torch.Tensor:
        """[b, L] float64: each candidate's value at its place, `fill` elsewhere."""
        out = torch.full(self.candidates.shape, fill, dtype=torch.float64, device=self.candidates.device)
        out[self.local, self.positions] = values
        return out

    def per_row(self, flags: torch.Tensor) -> torch.Tensor:
        """[b] long: how many candidates of each active row have the flag."""
        zeros = torch.zeros(self.rows.size, dtype=torch.long, device=self.candidates.device)
        return zeros.index_add_(0, self.local, flags.long())
