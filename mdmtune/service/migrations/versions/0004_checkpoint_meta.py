"""checkpoints.meta: what a checkpoint declares (format, vocabulary size, mask token and id, maximum length, special
tokens, end ids), read from its JSON files once at upload, so that a job is checked without loading the model.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("checkpoints") as batch:
        batch.add_column(
            sa.Column("meta", JSON, nullable=True, comment="declared conventions, read at upload (no weights)")
        )


def downgrade() -> None:
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("meta")
