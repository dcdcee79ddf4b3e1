"""The names and limits of the sampler's settings, the model families and the search, in one torch-free module.

Why apart from mdmtune.sampling and mdmtune.models: the job spec, the HTTP schema and the CLI check these names
without importing torch (an API node never loads a model), and the sampler and loaders use the same tuples. The
option table (mdmtune.options.table) reads its choices from here.
"""

from __future__ import annotations

SAMPLERS: tuple[str, ...] = ("count", "ancestral")
REMASKINGS: tuple[str, ...] = ("low_confidence", "random", "margin", "entropy")
CONFIDENCE_DTYPES: tuple[str, ...] = ("model", "float64")
MAX_CFG_SCALE = 100.0
"""LLaDA evaluates with scales of 0 to a few; past 100 the unconditional pass is all that is left."""
DECODERS: tuple[str, ...] = ("schedule", "threshold", "entropy", "hybrid")
"""schedule: the count plan of a Beta schedule; threshold (Fast-dLLM) and entropy (EB-sampler): adaptive decoders;
hybrid (diffusers' BlockRefinementScheduler): the schedule's count plan as a floor, plus every position above tau."""
MAX_ENTROPY_BOUND = 1000.0
"""Nats; far above any useful bound (log of a 126k vocabulary is 11.7 per token), there only to bound requests."""
MAX_DECODER_STEPS = 100_000
FAMILIES: tuple[str, ...] = ("masked_lm", "llada", "dream", "mdlm")
"""Hugging Face model families (mdmtune.models.families says what each means)."""
OBJECTIVES: tuple[str, ...] = ("quality", "energy", "frontier")
"""frontier: quality per model call across budgets (mdmtune.tuning.frontier); `steps` holds the budgets."""
SEARCH_ALGORITHMS: tuple[str, ...] = ("tpe", "gp", "cmaes", "random")
DEFAULT_TRIALS = {"quality": 60, "energy": 200, "frontier": 40}
DEFAULT_BOUNDS = (0.05, 5.0)
RIVAL_FIELDS: tuple[str, ...] = ("decoder", "threshold", "entropy_bound", "max_steps")
"""The sampling options that choose an adaptive decoder: in a quality job, the rival scored beside the schedules,
which themselves are always sampled with the count plan (so these stay out of the schedules' settings)."""
