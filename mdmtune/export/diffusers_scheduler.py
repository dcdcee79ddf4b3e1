"""The tuned plan in diffusers: `BetaBlockRefinementScheduler`, a `BlockRefinementScheduler` whose counts are Beta's.

diffusers (>= 0.42) samples LLaDA2-style models with `LLaDA2Pipeline` and `BlockRefinementScheduler`: per block,
`set_timesteps` asks `get_num_transfer_tokens(block_length, steps)` for the counts (spread evenly), and `step`
commits, in each row, every masked token above the confidence `threshold` if there are at least that step's count
of them, else the count's most confident ones; an optional `editing_threshold` rewrites committed tokens after.

This subclass changes the counts only. They are the count plan of the tuned schedule (mdmtune.core.plans), and they are
made per row from the number of masked tokens the block holds at its step 0, exactly as LLaDA's generate() and
`mdmtune sample` plan a block (in LLaDA2Pipeline the first block also holds the prompt's tail, so it has fewer
masks than block_length). Threshold and editing are the parent's: with `threshold=1.0` (no probability exceeds 1)
and `editing_threshold=None` every step commits exactly its planned count, which is the setting the schedule was
tuned in. The class is registered by config: `save_config` / `from_config` / `from_pretrained` round-trip `a`, `b`
and `schedule` with the parent's fields. diffusers is an optional extra: `pip install 'mdmtune[diffusers]'`.
"""

from __future__ import annotations

from typing import Any

import torch

try:
    from diffusers import BlockRefinementScheduler
    from diffusers.configuration_utils import register_to_config
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "BetaBlockRefinementScheduler needs diffusers >= 0.42 (BlockRefinementScheduler): "
        "pip install 'mdmtune[diffusers]'"
    ) from error

from mdmtune.export.llada import plan_counts


class BetaBlockRefinementScheduler(BlockRefinementScheduler):
    """BlockRefinementScheduler with the Beta-family count plan (alpha = sin^2(pi/2 I_t(a, b))) at every block.

    a, b: the tuned shape parameters; schedule: a named schedule instead (linear, cos2, sine) when a and b are None.
    num_inference_steps: steps per block. Everything else is the parent's.
    """

    @register_to_config
    def __init__(
        self,
        block_length: int = 32,
        num_inference_steps: int = 32,
        threshold: float = 0.95,
        editing_threshold: float | None = None,
        minimal_topk: int = 1,
        a: float | None = 0.5,
        b: float | None = 0.5,
        schedule: str | None = None,
    ):
        plan_counts(1, 1, a, b, None if a is not None else schedule)  # a bad (a, b) fails here
        super().__init__(
            block_length=block_length,
            num_inference_steps=num_inference_steps,
            threshold=threshold,
            editing_threshold=editing_threshold,
            minimal_topk=minimal_topk,
        )
        self._row_plans: torch.LongTensor | None = None

    def _plan(self, masked: int, steps: int) -> list[int]:
        a, b = self.config.a, self.config.b
        return plan_counts(masked, steps, a, b, None if a is not None else self.config.schedule)

    def get_num_transfer_tokens(self, block_length: int, num_inference_steps: int) -> torch.LongTensor:
        """The tuned plan for a block of `block_length` masked tokens (the parent spreads them evenly)."""
        if num_inference_steps <= 0:
            return torch.zeros((0,), dtype=torch.long)
        return torch.tensor(self._plan(int(block_length), int(num_inference_steps)), dtype=torch.long)

    def transfer_counts(self, masked: torch.Tensor, num_inference_steps: int | None = None) -> torch.LongTensor:
        """[batch, steps] plans for rows with `masked` [batch] masked tokens each."""
        steps = int(num_inference_steps or self.num_inference_steps)
        rows = [self._plan(int(m), steps) for m in masked.reshape(-1).tolist()]
        return torch.tensor(rows, dtype=torch.long, device=masked.device).reshape(len(rows), steps)

    def set_timesteps(
        self, num_inference_steps: int, device: str | torch.device | None = None, block_length: int | None = None
    ) -> None:
        super().set_timesteps(num_inference_steps, device=device, block_length=block_length)
        self._row_plans = None

    def step(
        self,
        model_output: torch.Tensor,
        timestep: int | torch.Tensor,
        sample: torch.LongTensor,
        *,
        mask_token_id: int | None = None,
        threshold: float | None = None,
        return_dict: bool = True,
        **kwargs: Any,
    ) -> Any:
        """The parent's step (sampling, threshold rule, editing) with each row's count taken from its own plan.

        The row plans are made at step 0 of a block from the masked tokens `sample` holds then (or whenever the
        batch size changes); later steps read them.
        """
        if mask_token_id is None:
            raise ValueError(
                "BetaBlockRefinementScheduler plans counts of masked tokens; the uniform-corruption mode "
                "(mask_token_id=None) spreads commits evenly by design: use BlockRefinementScheduler for it"
            )
        step_index = int(timestep.item()) if isinstance(timestep, torch.Tensor) else int(timestep)
        active = sample == mask_token_id
        if step_index == 0 or self._row_plans is None or self._row_plans.shape[0] != sample.shape[0]:
            self._row_plans = self.transfer_counts(active.sum(dim=-1), self.num_inference_steps)
        schedule, self._transfer_schedule = self._transfer_schedule, None  # the parent then commits no masks
        try:
            out = super().step(
                model_output, timestep, sample, mask_token_id=mask_token_id, threshold=threshold, **kwargs
            )
        finally:
            self._transfer_schedule = schedule
        transfer = self._mask_transfer(out.sampled_probs, active, step_index, threshold)
        prev_sample = out.prev_sample.clone()
        prev_sample[transfer] = out.sampled_tokens[transfer]
        out.prev_sample, out.transfer_index = prev_sample, transfer
        if not return_dict:
            return (prev_sample, transfer, out.editing_transfer_index, out.sampled_tokens, out.sampled_probs,
                    out.pred_logits)  # fmt: skip
        return out

    def _mask_transfer(
        self, probs: torch.Tensor, active: torch.BoolTensor, step_index: int, threshold: float | None
    ) -> torch.BoolTensor:
        """The parent's commit rule with this row's count: all above threshold if enough, else the top count."""
        threshold = float(self.config.threshold if threshold is None else threshold)
        transfer = torch.zeros_like(active)
        if not bool(active.any()):
            return transfer
        column = min(step_index, self._row_plans.shape[1] - 1)
        confidence = torch.where(
            active, probs.to(torch.float32), torch.full_like(probs, -torch.inf, dtype=torch.float32)
        )
        for row in range(active.shape[0]):
            count = int(self._row_plans[row, column])
            high = confidence[row] > threshold
            if int(high.sum()) >= count:
                transfer[row] = high
                continue
            k = min(count, int(active[row].sum()))
            if k > 0:
                transfer[row, torch.topk(confidence[row], k=k).indices] = True
        return transfer


__all__ = ["BetaBlockRefinementScheduler"]
