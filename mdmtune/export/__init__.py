"""Take a tuned schedule to where models run: LLaDA's generate.py, diffusers, lm-eval (docs/export.md).

- `load_tuned(result.json)` -> `TunedSchedule`: the schedule, N and lengths of a tune / sweep / frontier result.
- `get_num_transfer_tokens` / `transfer_tokens_fn`: LLaDA's per-block count function, returning the tuned plan.
- `diffusers_config(tuned)`: the scheduler config of `BetaBlockRefinementScheduler`
  (mdmtune.export.diffusers_scheduler, which needs the `diffusers` extra).
- `module_text(tuned)`: the drop-in module `mdmtune export --format llada` writes.
"""

from __future__ import annotations

from typing import Any

from mdmtune.export.document import TunedSchedule, load_tuned, tuned_from_json
from mdmtune.export.llada import get_num_transfer_tokens, module_text, plan_counts, transfer_tokens_fn

SCHEDULER_CLASS = "BetaBlockRefinementScheduler"


def diffusers_config(
    tuned: TunedSchedule, threshold: float = 1.0, editing_threshold: float | None = None
) -> dict[str, Any]:
    """`BetaBlockRefinementScheduler`'s config (scheduler_config.json) for the tuned schedule.

    threshold 1.0 and no editing: every step commits exactly its planned count, as in tuning (LLaDA's low-confidence
    remasking). num_inference_steps is the steps per block.
    """
    if tuned.gen_length is None:
        from mdmtune.errors import InvalidInput

        raise InvalidInput("gen_length", "the diffusers export needs the block length (give --gen-length)")
    return {
        "_class_name": SCHEDULER_CLASS,
        "_mdmtune_module": "mdmtune.export.diffusers_scheduler",
        "block_length": tuned.block_length or tuned.gen_length,
        "num_inference_steps": tuned.steps_per_block,
        "threshold": threshold,
        "editing_threshold": editing_threshold,
        "minimal_topk": 1,
        "a": tuned.a,
        "b": tuned.b,
        "schedule": tuned.name,
    }


__all__ = [
    "SCHEDULER_CLASS",
    "TunedSchedule",
    "diffusers_config",
    "get_num_transfer_tokens",
    "load_tuned",
    "module_text",
    "plan_counts",
    "transfer_tokens_fn",
    "tuned_from_json",
]
