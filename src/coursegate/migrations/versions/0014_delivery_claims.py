"""a delivery remembers when it was claimed; an attempt's latency may be unknown

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.alter_column("latency_ms", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE delivery_attempts SET latency_ms = 0 WHERE latency_ms IS NULL")
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.alter_column("latency_ms", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
