"""mdmtune: tune the mask schedule of a masked diffusion model after training.

The core (schedules, plans, energy, toy, sampling, evalsets, metrics, tuning) is pure computation: it never imports
FastAPI or SQLAlchemy, so it runs from a notebook with no server. The service lives in `mdmtune.service.app`,
`mdmtune.service.db` and `mdmtune.service.workers`, which use the core and never the other way round.
"""

__version__ = "0.1.0"
