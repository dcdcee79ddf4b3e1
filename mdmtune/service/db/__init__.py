"""The service's database: SQLAlchemy 2 models (`models`), engines and sessions (`session`), API keys (`apikeys`).

No business logic lives here (the job life cycle is in `mdmtune.service.workers`). The schema changes only through the
Alembic migrations in `mdmtune.service.migrations` (`mdmtune db upgrade`); nothing here calls `create_all`.
"""

from mdmtune.service.db.models import ApiKey, Base, Checkpoint, EvalSetRow, Job, JobHelper, JobStatus
from mdmtune.service.db.session import make_engine, make_session_factory, optuna_storage

__all__ = [
    "ApiKey",
    "Base",
    "Checkpoint",
    "EvalSetRow",
    "Job",
    "JobHelper",
    "JobStatus",
    "make_engine",
    "make_session_factory",
    "optuna_storage",
]
