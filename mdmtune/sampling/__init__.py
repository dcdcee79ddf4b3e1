"""Batched samplers for masked diffusion models, driven by a plan per row (spec/MATH.md).

Public API:
- `SamplerSettings(sampler="count", remasking="low_confidence", temperature=0.0, block_length=None)`
- `sample(denoiser, ids, alphas, settings, seeds, gen_region=None, attention_mask=None) -> SampleOutput`
  (ids [B, L] with mask_token_id where to generate; alphas [B, N+1] per-row schedule on the N-step grid;
  one integer seed per row) -> SampleOutput(ids, nfe, row_nfe, committed_per_step).
- `derive_seed(*parts)`: the seed of a (record, replicate) and of a (row, step).
Never imports FastAPI or SQLAlchemy.
"""

from mdmtune.sampling.sampler import sample
from mdmtune.sampling.seeds import derive_seed
from mdmtune.sampling.settings import REMASKINGS, SAMPLERS, SampleOutput, SamplerSettings

__all__ = ["REMASKINGS", "SAMPLERS", "SampleOutput", "SamplerSettings", "derive_seed", "sample"]
