"""roster withdrawals wait for their run's end

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("roster_enrollments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("withdrawn_by_run", sa.Uuid(), nullable=True))
        batch_op.create_index(
            "ix_roster_enrollments_withdrawn",
            ["tenant_id", "withdrawn_by_run"],
            unique=False,
            postgresql_where=sa.text("withdrawn_by_run IS NOT NULL"),
            sqlite_where=sa.text("withdrawn_by_run IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("roster_enrollments", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_roster_enrollments_withdrawn",
            postgresql_where=sa.text("withdrawn_by_run IS NOT NULL"),
            sqlite_where=sa.text("withdrawn_by_run IS NOT NULL"),
        )
        batch_op.drop_column("withdrawn_by_run")
