"""jobs.validate_eval_set_id: a second eval set on which a quality job re-scores its best and baselines at the end."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column(
                "validate_eval_set_id",
                sa.String(32),
                nullable=True,
                comment="quality: a second set re-scored when the search ends",
            )
        )
        batch.create_foreign_key(
            op.f("fk_jobs_validate_eval_set_id_eval_sets"), "eval_sets", ["validate_eval_set_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("fk_jobs_validate_eval_set_id_eval_sets"), type_="foreignkey")
        batch.drop_column("validate_eval_set_id")
