"""Batched samplers for masked diffusion models, driven by a plan per row (docs/math.md).

Public API:
- `SamplerSettings(sampler="count", remasking="low_confidence", temperature=0.0, block_length=None)`
- `sample(denoiser, ids, alphas, settings, seeds, gen_region=None, attention_mask=None) -> SampleOutput`
  (ids [B, L] with mask_token_id where to generate; alphas [B, N+1] per-row schedule on the N-step grid, None for
  the threshold and entropy decoders, which refuse one; one integer seed per row)
  -> SampleOutput(ids, nfe, row_nfe, committed_per_step).
- `sample_adaptive(denoiser, ids, settings, seeds, gen_region=None, attention_mask=None, parameters=None)`: the
  threshold (Fast-dLLM) and entropy (EB-sampler) decoders, one threshold or bound per row (adaptive.py); `sample`
  dispatches to it when `settings.decoder` is threshold or entropy.
- `sample_hybrid(denoiser, ids, alphas, settings, seeds, gen_region=None, attention_mask=None, thresholds=None)`:
  diffusers' BlockRefinementScheduler, the count plan of alphas as a floor plus every position above tau, one tau
  per row (sampler.py); `sample` dispatches to it when `settings.decoder` is "hybrid".
- `derive_seed(*parts)`: the seed of a (record, replicate) and of a (row, step).

Conventions (each module says why):
- One loop (loop.py) runs every sampler and decoder; each is a commit rule (rules.py: count, ancestral, hybrid;
  adaptive.py: threshold, entropy) that names the rows of each call and picks what they commit.
- NFE = model calls actually run; a step at which no row commits anything runs none, and only the rows that commit
  something at a step are sent to the model (loop.py). `row_nfe` is each row's cost as if sampled alone.
- Randomness is counter-based per (row seed, step, position slot, token): identical for a row whatever its
  batch-mates, shared across schedules (common random numbers), bit-identical on CPU and CUDA (seeds.py).
- Choices in float64; the mask token is never written; confidence is the untempered softmax (choice.py).
- Plans: count plans per row and block, ancestral probabilities per row and block (layout.py).
- Padding: rows of different lengths are left-padded with pad_token_id and an attention mask (the caller's).
Modules: settings (what to do), layout (where and how much), seeds (noise), choice (one step's decisions),
loop (the one loop), rules and adaptive (the commit rules), sampler (the schedule entry points).
Never imports FastAPI or SQLAlchemy.
"""

from mdmtune.sampling.adaptive import sample_adaptive
from mdmtune.sampling.sampler import sample, sample_hybrid
from mdmtune.sampling.seeds import derive_seed
from mdmtune.sampling.settings import DECODERS, REMASKINGS, SAMPLERS, SampleOutput, SamplerSettings

__all__ = [
    "DECODERS",
    "REMASKINGS",
    "SAMPLERS",
    "SampleOutput",
    "SamplerSettings",
    "derive_seed",
    "sample",
    "sample_adaptive",
    "sample_hybrid",
]
