"""The schedule samplers' entry points: B rows, each with its own schedule (alphas) and seed, walked from t = 0 to 1.

Per step k (window = the current semi-AR block, or the whole generated area):
- count sampler: row r commits K_k[r] of its still-masked window positions, the top ones by the remasking score;
- ancestral sampler: each still-masked window position of row r unmasks with probability p_k[r], decided by the
  row's own uniform draw before any model call;
- hybrid decoder: the count plan as a floor plus every position above the row's tau.
Each is a commit rule (rules.py) of the one sampling loop (loop.py).
Only the rows that commit something at step k are sent to the model (a sub-batch), and a step at which no row
commits anything makes no model call at all. This is MDLM's cached sampler made exact: the state only changes where
something is committed, so logits are only ever needed right then, and never recomputed for an unchanged state.
NFE convention: `nfe` counts model calls (one call on a (sub-)batch = 1 NFE, however many rows it holds);
`row_nfe[r]` counts the calls row r was part of (= its cost sampled alone). Never imports FastAPI or SQLAlchemy.
"""

from __future__ import annotations

import numpy as np
import torch

from mdmtune.errors import InvalidInput
from mdmtune.models.base import Denoiser
from mdmtune.sampling.adaptive import sample_adaptive
from mdmtune.sampling.layout import Layout, build_layout, check_alphas, step_counts, unmask_probabilities
from mdmtune.sampling.loop import CommitRule, SamplingLoop, check_inputs, row_values
from mdmtune.sampling.rules import AncestralRule, CountRule, HybridRule
from mdmtune.sampling.settings import SampleOutput, SamplerSettings


def sample(
    denoiser: Denoiser,
    ids: torch.Tensor,
    alphas: np.ndarray | None,
    settings: SamplerSettings,
    seeds: list[int] | np.ndarray,
    gen_region: tuple[int, int] | None = None,
    attention_mask: torch.Tensor | None = None,
) -> SampleOutput:
    """Fill every masked position of `ids` [B, L] (mask_token_id marks them), row r under schedule alphas[r].

    alphas [B, N+1]: each row's alpha on the N-step grid (mdmtune.core.schedules.alpha_grids); seeds: one int per row.
    gen_region (start, length): completion, the region generated block by block; None: infill, every mask
    anywhere, no blocks. Rows of different prompt lengths are left-padded with pad_token_id and given an
    attention_mask (1 = real token) by the caller; padding is never generated.
    The threshold and entropy decoders decide their own steps: they take alphas=None and refuse a schedule, which
    they would not read (the hybrid decoder reads it: its count plan is the floor).
    """
    if settings.decoder == "hybrid":
        return sample_hybrid(denoiser, ids, alphas, settings, seeds, gen_region, attention_mask)
    if settings.decoder != "schedule":
        if alphas is not None:
            raise InvalidInput(
                "alphas", f"the {settings.decoder} decoder decides its own steps and reads no schedule; pass None"
            )
        return sample_adaptive(denoiser, ids, settings, seeds, gen_region, attention_mask)
    ids, row_seeds, attention_mask = check_inputs(denoiser, ids, seeds, attention_mask)
    grid, layout = _planned(denoiser, ids, alphas, settings, gen_region)
    rule: CommitRule
    if settings.sampler == "count":
        rule = CountRule(step_counts(grid, layout), layout, settings.remasking)
    else:
        rule = AncestralRule(unmask_probabilities(grid, layout), layout)
    return SamplingLoop(denoiser, ids, settings, row_seeds, layout, attention_mask, rule).run()


def sample_hybrid(
    denoiser: Denoiser,
    ids: torch.Tensor,
    alphas: np.ndarray | None,
    settings: SamplerSettings,
    seeds: list[int] | np.ndarray,
    gen_region: tuple[int, int] | None = None,
    attention_mask: torch.Tensor | None = None,
    thresholds: np.ndarray | list[float] | None = None,
) -> SampleOutput:
    """The hybrid decoder (diffusers' BlockRefinementScheduler with a Beta plan): row r's count plan from alphas[r]
    is the floor of each step, and every open position whose confidence is strictly above the row's tau is committed
    too (the most confident first); a block that empties early costs no call for its remaining steps.

    thresholds [B]: each row's tau in [0, 1]; None: settings.threshold for every row. Other arguments as `sample`.
    """
    if settings.decoder != "hybrid":
        raise InvalidInput("decoder", f"sample_hybrid runs the hybrid decoder, not {settings.decoder!r}")
    ids, row_seeds, attention_mask = check_inputs(denoiser, ids, seeds, attention_mask)
    values = row_values("threshold", thresholds, float(settings.threshold or 0.0), 1.0, ids.shape[0])
    grid, layout = _planned(denoiser, ids, alphas, settings, gen_region)
    rule = HybridRule(step_counts(grid, layout), layout, values)
    return SamplingLoop(denoiser, ids, settings, row_seeds, layout, attention_mask, rule).run()


def _planned(
    denoiser: Denoiser,
    ids: torch.Tensor,
    alphas: object,
    settings: SamplerSettings,
    gen_region: tuple[int, int] | None,
) -> tuple[np.ndarray, Layout]:
    """The checked per-row schedule and the windows its N steps walk."""
    grid = check_alphas(alphas, ids.shape[0])
    layout = build_layout(ids, denoiser.mask_token_id, gen_region, settings.block_length, grid.shape[1] - 1)
    return grid, layout
