"""Seeds: every random draw of a row comes from its own seed, so rows are independent of their batch-mates.

The sampler seeds a fresh CPU `torch.Generator` for each (row seed, step) from `derive_seed(row_seed, step)`.
Consequences: a row's draws at step k do not depend on what it (or any other row) drew before, skipping a step draws
nothing and shifts nothing, and two schedules sampled with the same row seed see the same noise at the same step
and position slot (common random numbers: paired differences between schedules have less variance). CPU generators
make the numbers identical on every device. Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import numpy as np
import torch

from mdmtune.errors import InvalidInput

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _splitmix64(value: int) -> int:
    """One round of SplitMix64 (Steele et al.): a bijective 64-bit mixer with good avalanche."""
    value = (value + _GOLDEN) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integer parts (order matters): the seed of a (record, replicate), of a (row, step), ..."""
    state = 0
    for part in parts:
        state = _splitmix64(state ^ (int(part) & _MASK64))
    return state >> 1


def check_seeds(seeds: object, rows: int) -> list[int]:
    """One integer seed in [0, 2**64) per row; InvalidInput("seeds") otherwise."""
    values = list(np.asarray(seeds).reshape(-1).tolist()) if not isinstance(seeds, (list, tuple)) else list(seeds)
    if len(values) != rows:
        raise InvalidInput("seeds", f"need one seed per row ({rows}), got {len(values)}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= _MASK64:
            raise InvalidInput("seeds", f"every seed must be an integer in [0, 2**64), got {value!r}")
    return [int(v) for v in values]


def step_generator(row_seed: int, step: int) -> torch.Generator:
    """The CPU generator of one row at one step."""
    return torch.Generator(device="cpu").manual_seed(derive_seed(row_seed, step))


def step_noise(
    row_seed: int, step: int, slots: int, vocab: int, uniforms: bool, gumbel: bool
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The row's noise at a step, per position slot of its current window: uniforms [slots], Gumbel [slots, vocab].

    Always drawn in this order and at full window size, so slot j gets the same numbers whichever slots are still
    masked (that is what keeps schedules coupled). float64 throughout (LLaDA: low-precision Gumbel-max hurts).
    """
    generator = step_generator(row_seed, step)
    u = torch.rand(slots, generator=generator, dtype=torch.float64) if uniforms else None
    g = None
    if gumbel:
        g = torch.rand(slots, vocab, generator=generator, dtype=torch.float64)
        g = -torch.log(-torch.log(g))
    return u, g
