"""The largest value each number of a tuning job may take: read by the option table (mdmtune.options.table), so the
spec and its parts (the library and the CLI), the HTTP schema (where they show as OpenAPI maximums) and the service's
checks share them.

Why bounds at all: every number a request carries sizes some loop or allocation in a worker (steps sizes the plan
and the sampling loop, n_trials the study, replicates the batch), and a seed is fed to generators with a fixed
range. An unbounded number is a way to make a worker grow without limit or fail at every claim.
"""

from __future__ import annotations

MAX_STEPS = 4096
"""Sampling steps N. A quality job is further bounded by its eval set (at most gen_length, or the largest masked
count of an infill record): a step beyond that commits nothing."""
MAX_TRIALS = 10_000
MAX_SEED = 2**31 - 1
"""Seeds derived from the job's seed (a resumed job's seed + attempt, a helper's seed + 1000 + a 24-bit offset) stay
below 2**32, the range of numpy's legacy generators that Optuna's samplers are seeded through."""
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600.0
MAX_GEN_LENGTH = 32_768
MAX_SUBSET_SIZE = 1_000_000
MAX_REPLICATES = 64
MAX_TEMPERATURE = 100.0
MAX_SHAPE = 1000.0
"""Largest Beta parameter (search bounds of a and b, the energy weight)."""
MAX_TRIALS_PER_BATCH = 256
MAX_TOP_K = 100
MAX_REDUCTION_FACTOR = 100
MAX_BOOTSTRAP_RESAMPLES = 1_000_000
MAX_BATCH_SIZE = 65_536
MAX_MASK_SYMBOL_CHARS = 64
MAX_BUDGETS = 8
"""Budgets of one frontier job (each is a whole Beta search and two decoder sweeps)."""
