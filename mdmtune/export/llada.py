"""The tuned plan where LLaDA's generate.py asks for one: a drop-in `get_num_transfer_tokens(mask_index, steps)`.

LLaDA's generate() calls `get_num_transfer_tokens(block_mask_index, steps)` once per block, with the block's mask
positions [batch, block_length] and the steps per block, and commits that many of the most confident tokens at each
step. Its own function spreads each row's masked count evenly (the linear schedule). The functions here return the
tuned schedule's count plan instead, row by row on each row's own masked count, computed by mdmtune.core.plans, so the
counts are exactly the ones `mdmtune sample` and the tuner use for that block.

    import generate                                   # LLaDA's generate.py
    from mdmtune.export import transfer_tokens_fn
    generate.get_num_transfer_tokens = transfer_tokens_fn(a=0.35, b=0.78)

`module_text` writes the same function as a small Python module (`mdmtune export --format llada`) that carries its
plans as a table, so it runs where mdmtune is not installed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

from mdmtune.core.plans import count_plan
from mdmtune.core.schedules import Schedule, beta, check_steps, named
from mdmtune.errors import InvalidInput

if TYPE_CHECKING:
    import torch

    from mdmtune.export.document import TunedSchedule

TABLE_LIMIT = 50_000
"""Most counts the exported module tabulates (rows masked = 0..block_length, times steps per block)."""


def _schedule(a: float | None, b: float | None, name: str | None) -> Schedule:
    if a is not None and b is not None:
        if name is not None:
            raise InvalidInput("name", "give a and b, or a name, not both")
        return beta(a, b)
    if name is None:
        raise InvalidInput("a", "give a and b (a Beta schedule) or a name (linear, cos2, sine)")
    return named(name)


@lru_cache(maxsize=4096)
def _counts(a: float | None, b: float | None, name: str | None, masked: int, steps: int) -> tuple[int, ...]:
    return tuple(int(k) for k in count_plan(_schedule(a, b, name).on_grid(steps), masked))


def plan_counts(masked: int, steps: int, a: float | None = None, b: float | None = None, name: str | None = None):
    """K_k for one row: `masked` tokens over `steps` steps of the schedule (Beta (a, b) or a named one)."""
    check_steps(steps)
    return list(_counts(a, b, name, int(masked), int(steps)))


def get_num_transfer_tokens(
    mask_index: torch.Tensor,
    steps: int,
    *,
    a: float | None = None,
    b: float | None = None,
    name: str | None = None,
) -> torch.Tensor:
    """LLaDA's get_num_transfer_tokens for the schedule: [batch, steps] int64 counts, each row summing to its masks.

    mask_index: [batch, L] booleans (the block's masked positions); steps: the steps of this block.
    """
    import torch

    check_steps(steps)
    masked = mask_index.sum(dim=1).tolist()
    rows = [_counts(a, b, name, int(m), int(steps)) for m in masked]
    return torch.tensor(rows, dtype=torch.int64, device=mask_index.device).reshape(len(rows), steps)


def transfer_tokens_fn(
    a: float | None = None, b: float | None = None, name: str | None = None
) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """A function with LLaDA's signature, `(mask_index, steps) -> [batch, steps]`, bound to the schedule."""
    _schedule(a, b, name)  # fail now, not inside generate()

    def tuned_get_num_transfer_tokens(mask_index: torch.Tensor, steps: int) -> torch.Tensor:
        return get_num_transfer_tokens(mask_index, steps, a=a, b=b, name=name)

    tuned_get_num_transfer_tokens.__doc__ = f"The count plan of {_schedule(a, b, name).name} (mdmtune)."
    return tuned_get_num_transfer_tokens


def module_text(tuned: TunedSchedule, origin: str = "") -> str:
    """A Python module with a drop-in `get_num_transfer_tokens(mask_index, steps)` for LLaDA's generate.py.

    It carries the plan of every masked count 0..block_length at the tuned steps per block (all LLaDA's generate()
    can ask at those settings); other steps or counts are computed by mdmtune when it is installed.
    """
    if tuned.gen_length is None:
        raise InvalidInput("gen_length", "the LLaDA export needs the generation length (give --gen-length)")
    block = tuned.block_length or tuned.gen_length
    per_block = tuned.steps_per_block
    largest = block if (block + 1) * per_block <= TABLE_LIMIT else None
    counts = range(block + 1) if largest is not None else (block,)
    table = {
        m: plan_counts(m, per_block, tuned.a, tuned.b, None if tuned.a is not None else tuned.name) for m in counts
    }
    rows = "\n".join(f"    {m}: {json.dumps(plan)}," for m, plan in table.items())
    return _MODULE.format(
        origin=origin or "a tuned schedule",
        name=tuned.name,
        a=repr(tuned.a),
        b=repr(tuned.b),
        steps=tuned.steps,
        gen_length=tuned.gen_length,
        block_length=block,
        per_block=per_block,
        rows=rows,
        named=repr(None if tuned.a is not None else tuned.name),
    )


_MODULE = '''"""Tuned mask schedule {name} for LLaDA's generate.py (`mdmtune export --format llada`, from {origin}).

alpha(t) = sin^2(pi/2 * I_t(a, b)), tuned at steps = {steps}, gen_length = {gen_length}, block_length = {block_length}
({per_block} steps per block). Use it in place of LLaDA's get_num_transfer_tokens:

    import generate                  # LLaDA's generate.py
    import tuned_schedule            # this file
    generate.get_num_transfer_tokens = tuned_schedule.get_num_transfer_tokens
    out = generate.generate(model, prompt, steps={steps}, gen_length={gen_length}, block_length={block_length})

or paste get_num_transfer_tokens (with PLANS and _plan) over the function of that name in generate.py. Each row
commits its plan for the block's own number of masked tokens, the plan mdmtune's sampler uses (mdmtune.core.plans).
"""

import torch

A = {a}
B = {b}
NAME = {named}  # a named schedule outside the Beta family (sine) when A and B are None
STEPS = {steps}
GEN_LENGTH = {gen_length}
BLOCK_LENGTH = {block_length}
STEPS_PER_BLOCK = {per_block}

PLANS = {{  # masked tokens in the block -> tokens committed at each of the STEPS_PER_BLOCK steps
{rows}
}}


def _plan(masked, steps):
    if steps == STEPS_PER_BLOCK and masked in PLANS:
        return PLANS[masked]
    try:
        from mdmtune.export.llada import plan_counts
    except ImportError:
        raise ValueError(
            f"the table holds the plans for steps={{STEPS_PER_BLOCK}} per block and up to {{BLOCK_LENGTH}} masked "
            f"tokens; steps={{steps}} with {{masked}} masked needs mdmtune installed (pip install mdmtune)"
        ) from None
    return plan_counts(masked, steps, A, B, NAME)


def get_num_transfer_tokens(mask_index, steps):
    """[batch, steps] int64: tokens to commit at each step, per row for its own number of masked tokens."""
    mask_num = mask_index.sum(dim=1).tolist()
    rows = [_plan(int(m), int(steps)) for m in mask_num]
    return torch.tensor(rows, dtype=torch.int64, device=mask_index.device).reshape(len(rows), steps)
'''
