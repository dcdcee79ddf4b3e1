"""Where each row generates and how much per step: windows (semi-AR blocks), position slots and per-row plans.

- Completion (`gen_region=(start, length)`): the masked positions of the region are generated, in blocks of
  `block_length` when given (LLaDA's semi-autoregressive mode); a mask outside the region is refused.
- Infill (`gen_region=None`): every position that holds the mask id is generated, in one window; no blocks.
Each generated position has a window (block) index and a slot: its ordinal among the row's masked positions of that
window, which is how per-position noise is addressed (so the noise does not depend on left padding).

Plans are per row, from that row's alphas on the N-step grid. With n blocks the plan inside a block uses the
schedule on the N/n-step grid, which is every n-th point of the N-step grid, i.e. `alphas[:, ::n]`; the count plans
themselves come from mdmtune.core.plans.count_plans, the one place they are derived. Never imports FastAPI or
SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mdmtune.core.plans import ancestral_probabilities, check_blocks, count_plans
from mdmtune.core.schedules import check_steps
from mdmtune.errors import InvalidInput


@dataclass(frozen=True)
class Layout:
    """block_of [B, L]: window index of each generated position, -1 where the token is given.
    slot [B, L]: ordinal of a generated position within its row's window, -1 where given.
    masked [B, n_blocks]: generated positions per row and window. steps_per_block: N / n_blocks."""

    block_of: torch.Tensor
    slot: torch.Tensor
    masked: np.ndarray
    n_blocks: int
    steps_per_block: int


def check_alphas(alphas: object, rows: int) -> np.ndarray:
    """alphas [B, N+1] float64 with N >= 1; the per-row schedule on the N-step grid."""
    grid = np.asarray(alphas, dtype=np.float64)
    if grid.ndim != 2 or grid.shape[0] != rows or grid.shape[1] < 2:
        raise InvalidInput("alphas", f"must have shape ({rows}, N+1) with N >= 1, got {grid.shape}")
    check_steps(grid.shape[1] - 1)
    return grid


def build_layout(
    ids: torch.Tensor, mask_token_id: int, gen_region: tuple[int, int] | None, block_length: int | None, steps: int
) -> Layout:
    """The windows and slots of a batch; InvalidInput for regions, blocks or masks that do not fit."""
    masks = ids == mask_token_id
    if gen_region is None:
        if block_length is not None:
            raise InvalidInput("block_length", "infill (no gen_region) has no blocks; leave block_length unset")
        block_of = torch.where(masks, 0, -1)
        n_blocks = 1
    else:
        start, length = _check_region(gen_region, ids.shape[1])
        columns = torch.arange(ids.shape[1])
        inside = (columns >= start) & (columns < start + length)
        if bool((masks & ~inside).any()):
            raise InvalidInput("ids", "a mask token lies outside gen_region; only the region is generated")
        block = length if block_length is None else block_length
        n_blocks = check_blocks(length, block, steps)
        block_of = torch.where(masks & inside, (columns - start) // block, -1)
    slot = torch.full_like(block_of, -1)
    masked = np.zeros((ids.shape[0], n_blocks), dtype=np.int64)
    for b in range(n_blocks):
        in_block = block_of == b
        slot = torch.where(in_block, torch.cumsum(in_block, dim=1) - 1, slot)
        masked[:, b] = in_block.sum(dim=1).numpy()
    return Layout(block_of.long(), slot.long(), masked, n_blocks, steps // n_blocks)


def _check_region(gen_region: tuple[int, int], length: int) -> tuple[int, int]:
    try:
        start, size = (int(v) for v in gen_region)
    except (TypeError, ValueError):
        raise InvalidInput("gen_region", f"must be (start, length), got {gen_region!r}") from None
    if start < 0 or size < 1 or start + size > length:
        raise InvalidInput("gen_region", f"(start {start}, length {size}) must lie inside the {length} columns")
    return start, size


def block_alphas(alphas: np.ndarray, layout: Layout) -> np.ndarray:
    """alpha on the N/n-step grid of one block, per row: every n-th point of the N-step grid."""
    return alphas[:, :: layout.n_blocks]


def step_counts(alphas: np.ndarray, layout: Layout) -> np.ndarray:
    """K [B, N]: block b's steps carry the row's count plan over its masked count in that block."""
    return count_plans(block_alphas(alphas, layout), layout.masked).reshape(alphas.shape[0], -1)


def unmask_probabilities(alphas: np.ndarray, layout: Layout) -> np.ndarray:
    """p [B, N]: the ancestral plan inside each block (its last step unmasks what remains of the block)."""
    return np.tile(ancestral_probabilities(block_alphas(alphas, layout)), (1, layout.n_blocks))
