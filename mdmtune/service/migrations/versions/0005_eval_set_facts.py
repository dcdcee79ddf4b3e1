"""eval_sets.facts: what a job submission checks of an eval set (declared metric, which metrics score every record,
the mask symbols' counts), computed once at upload so that no submission parses the file. Rows from before it stay
NULL; the first submission on one computes their facts from the file and stores them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("eval_sets") as batch:
        batch.add_column(
            sa.Column(
                "facts",
                JSON,
                nullable=True,
                comment="what job checks read, computed at upload (mdmtune.tuning.evalset_facts)",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("eval_sets") as batch:
        batch.drop_column("facts")
