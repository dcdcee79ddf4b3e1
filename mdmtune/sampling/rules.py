"""The commit rules of the schedule samplers, one per plan kind, each plugged into the one loop (loop.py).

Each walks the N steps of a per-row plan (layout.py), tick k being step k; block b owns steps b*N/n .. (b+1)*N/n - 1.
- `CountRule` (LLaDA / MaskGIT): row r commits K_k[r] of its open positions, the top ones by the remasking score.
- `AncestralRule` (MDLM): each open position of row r unmasks with probability p_k[r], decided by the row's own
  uniform draw before any model call, so only the rows that unmask something are sent to the model.
- `HybridRule` (diffusers' BlockRefinementScheduler): the count plan is a floor; step k commits max(K_k, #confidence
  > tau) of the open positions, the most confident ones, and a row whose block emptied early sits the step out.
Only the rows that commit something at step k take part in its call; a step where none does makes no call (MDLM's
cached sampler made exact: the state only changes where something is committed). The adaptive rules are in
adaptive.py. Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import numpy as np
import torch

from mdmtune.errors import InternalError
from mdmtune.sampling.choice import top_k_per_row
from mdmtune.sampling.layout import Layout
from mdmtune.sampling.loop import Call, SamplingLoop

__all__ = ["AncestralRule", "CountRule", "HybridRule"]


class _PlanRule:
    """A rule over a per-row plan [B, N]: tick k is step k, inside block k // (N / n_blocks)."""

    own_clock = False

    def __init__(self, plan: np.ndarray, layout: Layout) -> None:
        self.plan = plan
        self.columns = plan.shape[1]
        self.per_block = layout.steps_per_block

    def block(self, tick: int) -> int:
        return tick // self.per_block


class CountRule(_PlanRule):
    """Step k commits exactly K_k[r] tokens of row r, the highest by the settings' remasking score."""

    def __init__(self, plan: np.ndarray, layout: Layout, remasking: str) -> None:
        super().__init__(plan, layout)
        self.remasking = remasking

    def rows(self, loop: SamplingLoop, tick: int) -> np.ndarray | None:
        if tick == self.columns:
            return None
        counts = self.plan[:, tick]
        active = np.flatnonzero(counts > 0)
        block = self.block(tick)
        short = (loop.block[active] != block) | (loop.open[active, block] < counts[active])
        if bool(short.any()):
            raise InternalError(f"step {tick}: the plan commits more tokens than are still masked")
        return active

    def select(self, call: Call) -> torch.Tensor:
        scores = call.uniforms() if self.remasking == "random" else call.confidence(self.remasking)
        wanted = torch.as_tensor(self.plan[call.rows, call.tick], device=call.candidates.device)
        return top_k_per_row(call.table(scores, -torch.inf), wanted)[call.local, call.positions]


class AncestralRule(_PlanRule):
    """Each open position of the step's block unmasks with the row's probability p_k, by its own uniform draw."""

    def __init__(self, plan: np.ndarray, layout: Layout) -> None:
        super().__init__(plan, layout)
        self.decided: torch.Tensor | None = None

    def rows(self, loop: SamplingLoop, tick: int) -> np.ndarray | None:
        if tick == self.columns:
            return None
        block = self.block(tick)
        index = torch.as_tensor(np.flatnonzero(loop.block == block), device=loop.device)
        inside = (loop.block_of[index] == block) & (loop.x[index] == loop.mask_id)
        local, positions = inside.nonzero(as_tuple=True)
        owners = index[local]
        chance = torch.as_tensor(self.plan[:, tick], device=loop.device)
        unmask = loop.uniforms(owners, positions, tick) < chance[owners]
        self.decided = torch.zeros_like(loop.x, dtype=torch.bool)
        self.decided[owners[unmask], positions[unmask]] = True
        return np.flatnonzero(self.decided.any(dim=1).cpu().numpy())

    def select(self, call: Call) -> torch.Tensor:
        assert self.decided is not None
        return self.decided[call.owners, call.positions]


class HybridRule(_PlanRule):
    """max(K_k[r], positions strictly above tau[r]) of the open positions, the most confident first.

    A row whose block is already empty sits the step out (no call); so does a row whose floor is 0 and whose tau is
    1 (nothing can be strictly above 1: the step is known to commit nothing, as the count sampler skips its zero
    steps). Noise is addressed by the step index, as the count sampler's, so tau = 1 gives the count sampler's
    tokens and calls exactly.
    """

    def __init__(self, plan: np.ndarray, layout: Layout, thresholds: np.ndarray) -> None:
        super().__init__(plan, layout)
        self.thresholds = thresholds

    def rows(self, loop: SamplingLoop, tick: int) -> np.ndarray | None:
        if tick == self.columns:
            return None
        self.remaining = loop.open[:, self.block(tick)].copy()
        floor = self.plan[:, tick]
        return np.flatnonzero((self.remaining > 0) & ((floor > 0) | (self.thresholds < 1.0)))

    def select(self, call: Call) -> torch.Tensor:
        device = call.candidates.device
        scores = call.confidence("low_confidence")
        tau = torch.as_tensor(self.thresholds[call.rows], dtype=torch.float64, device=device)
        above = call.per_row(scores > tau[call.local])
        floor = torch.as_tensor(np.minimum(self.plan[call.rows, call.tick], self.remaining[call.rows]), device=device)
        wanted = torch.maximum(floor, above)
        return top_k_per_row(call.table(scores, -torch.inf), wanted)[call.local, call.positions]
