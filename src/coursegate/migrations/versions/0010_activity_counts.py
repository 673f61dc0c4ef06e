"""activity counts for the overview, open parked and rejects indexes

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activity_counts",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("bucket_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_activity_counts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "metric", "bucket_at", name=op.f("pk_activity_counts")
        ),
    )
    op.create_table(
        "activity_marks",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("last_id", sa.Uuid(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_activity_marks_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "source", name=op.f("pk_activity_marks")),
    )
    with op.batch_alter_table("connector_rejects", schema=None) as batch_op:
        batch_op.create_index(
            "ix_connector_rejects_open",
            ["tenant_id", "connector_id", "id"],
            unique=False,
            postgresql_where=sa.text("resolved_at IS NULL"),
            sqlite_where=sa.text("resolved_at IS NULL"),
        )

    with op.batch_alter_table("parked_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_parked_requests_open",
            ["tenant_id", "id"],
            unique=False,
            postgresql_where=sa.text("resolved_at IS NULL"),
            sqlite_where=sa.text("resolved_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("parked_requests", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_parked_requests_open",
            postgresql_where=sa.text("resolved_at IS NULL"),
            sqlite_where=sa.text("resolved_at IS NULL"),
        )

    with op.batch_alter_table("connector_rejects", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_connector_rejects_open",
            postgresql_where=sa.text("resolved_at IS NULL"),
            sqlite_where=sa.text("resolved_at IS NULL"),
        )

    op.drop_table("activity_marks")
    op.drop_table("activity_counts")
