"""Initial schema: checkpoints, eval_sets, jobs, api_keys (trials live in Optuna's tables).

Self-contained on purpose: a migration must keep meaning the same thing when the models change later, so it names
plain SQLAlchemy types instead of importing mdmtune.service.db.models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None

UTC_TIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, comment="sha256 hex of the secret"),
        sa.Column("prefix", sa.String(16), nullable=False, comment="first chars of the secret, for display"),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    _create_artifact_table(
        "checkpoints",
        [sa.Column("format", sa.String(16), nullable=False, comment="native | hf | torchscript")],
        {
            "sha256": "of the uploaded bytes",
            "size": "bytes as uploaded",
            "path": "file or unpacked folder; relative paths are under the artifact dir",
            "filename": "the client's file name, if any",
        },
    )
    _create_artifact_table(
        "eval_sets",
        [
            sa.Column("record_count", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False, comment="completion | infill"),
        ],
        {"path": "relative paths are under the artifact dir"},
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner_key_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("objective", sa.String(16), nullable=False, comment="energy | quality"),
        sa.Column(
            "request",
            JSON,
            nullable=False,
            comment="the full validated TuneSpec, defaults included (TuneSpec.to_dict())",
        ),
        sa.Column("checkpoint_id", sa.String(32), nullable=True),
        sa.Column("eval_set_id", sa.String(32), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=True, comment="sha256 of the request body"),
        sa.Column("study_name", sa.String(128), nullable=False, comment="Optuna study"),
        sa.Column("lease_token", sa.String(32), nullable=True),
        sa.Column("lease_expires_at", UTC_TIME, nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False, comment="how many times it was claimed"),
        sa.Column("worker_id", sa.String(255), nullable=True, comment="last worker that claimed it"),
        sa.Column(
            "timeout_seconds",
            sa.Float(),
            nullable=True,
            comment="running time limit; None: the worker's job_timeout_seconds",
        ),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("n_trials", sa.Integer(), nullable=False, comment="requested finished trials"),
        sa.Column("trials_done", sa.Integer(), nullable=False, comment="finished trials so far"),
        sa.Column("nfe", sa.BigInteger(), nullable=False, comment="model forward passes so far"),
        sa.Column("best_value", sa.Float(), nullable=True, comment="best objective value so far"),
        sa.Column("best_params", JSON, nullable=True, comment='{"a": .., "b": ..}'),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("started_at", UTC_TIME, nullable=True, comment="first claim"),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("finished_at", UTC_TIME, nullable=True),
        sa.Column(
            "result", JSON, nullable=True, comment="the TuneResult as JSON (best, baselines, trials summary, figures)"
        ),
        sa.Column("error", sa.Text(), nullable=True, comment="why it failed (status failed)"),
        sa.ForeignKeyConstraint(["checkpoint_id"], ["checkpoints.id"], name=op.f("fk_jobs_checkpoint_id_checkpoints")),
        sa.ForeignKeyConstraint(["eval_set_id"], ["eval_sets.id"], name=op.f("fk_jobs_eval_set_id_eval_sets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        sa.UniqueConstraint("owner_key_id", "idempotency_key", name="uq_jobs_owner_idempotency"),
        sa.UniqueConstraint("study_name", name=op.f("uq_jobs_study_name")),
    )
    op.create_index(op.f("ix_jobs_owner_key_id"), "jobs", ["owner_key_id"])
    op.create_index("ix_jobs_status_created", "jobs", ["status", "created_at"])


def _create_artifact_table(table: str, own_columns: list[sa.Column], comments: dict[str, str]) -> None:
    """An uploaded artifact's table: its owner, content address, `own_columns`, size and place, indexed by owner and
    by content address. Checkpoints and eval sets share this shape; `comments` holds their column comments."""
    op.create_table(
        table,
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner_key_id", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, comment=comments.get("sha256")),
        *own_columns,
        sa.Column("size", sa.BigInteger(), nullable=False, comment=comments.get("size")),
        sa.Column("path", sa.Text(), nullable=False, comment=comments.get("path")),
        sa.Column("filename", sa.Text(), nullable=True, comment=comments.get("filename")),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    )
    op.create_index(op.f(f"ix_{table}_owner_key_id"), table, ["owner_key_id"])
    op.create_index(op.f(f"ix_{table}_sha256"), table, ["sha256"])


def downgrade() -> None:
    op.drop_table("jobs")
    op.drop_table("eval_sets")
    op.drop_table("checkpoints")
    op.drop_table("api_keys")
