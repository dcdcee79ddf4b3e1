"""job_helpers: workers helping with a running job they do not hold (several workers on one study)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    op.create_table(
        "job_helpers",
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("worker_id", sa.String(255), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_helpers_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token", name=op.f("pk_job_helpers")),
    )
    op.create_index(op.f("ix_job_helpers_job_id"), "job_helpers", ["job_id"])


def downgrade() -> None:
    op.drop_table("job_helpers")
