"""roster enrollments and per-collection watermarks

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_DATAPASS_COLLECTION = "authorization_requests"


def upgrade() -> None:
    with op.batch_alter_table("connector_rejects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("collection", sa.String(length=32), nullable=True))
    with op.batch_alter_table("connectors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("watermarks", _JSON, nullable=True))
    # A DataPass connector's one watermark becomes that of its one collection.
    connectors = sa.table(
        "connectors",
        sa.column("tenant_id", sa.String()),
        sa.column("id", sa.String()),
        sa.column("watermark", sa.DateTime(timezone=True)),
        sa.column("watermarks", _JSON),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(connectors.c.tenant_id, connectors.c.id, connectors.c.watermark).where(
            connectors.c.watermark.is_not(None)
        )
    ).all()
    for tenant_id, connector_id, watermark in rows:
        bind.execute(
            connectors.update()
            .where(connectors.c.tenant_id == tenant_id, connectors.c.id == connector_id)
            .values(watermarks={_DATAPASS_COLLECTION: _instant(watermark)})
        )
    with op.batch_alter_table("course_external_ids", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_course_external_ids_tenant_id_provider_id_providers"),
            type_="foreignkey",
        )
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.alter_column("seat_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.alter_column("batch_id", existing_type=sa.Uuid(), nullable=True)
    op.create_table(
        "roster_enrollments",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("connector_id", sa.String(length=63), nullable=False),
        sa.Column("sourced_id", sa.String(length=128), nullable=False),
        sa.Column("class_sourced_id", sa.String(length=128), nullable=False),
        sa.Column("enrollment_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "enrollment_id"],
            ["enrollments.tenant_id", "enrollments.id"],
            name=op.f("fk_roster_enrollments_tenant_id_enrollment_id_enrollments"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_roster_enrollments_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "connector_id", "sourced_id", name=op.f("pk_roster_enrollments")
        ),
    )
    op.create_index(
        "ix_roster_enrollments_class",
        "roster_enrollments",
        ["tenant_id", "connector_id", "class_sourced_id"],
        unique=False,
    )


def _instant(value: datetime) -> str:
    """RFC 3339 UTC text, as the application writes instants (SQLite hands back naive UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def downgrade() -> None:
    op.drop_index("ix_roster_enrollments_class", table_name="roster_enrollments")
    op.drop_table("roster_enrollments")
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.alter_column("batch_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.alter_column("seat_id", existing_type=sa.Uuid(), nullable=False)
    with op.batch_alter_table("course_external_ids", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_course_external_ids_tenant_id_provider_id_providers"),
            "providers",
            ["tenant_id", "provider_id"],
            ["tenant_id", "id"],
        )
    with op.batch_alter_table("connectors", schema=None) as batch_op:
        batch_op.drop_column("watermarks")
    with op.batch_alter_table("connector_rejects", schema=None) as batch_op:
        batch_op.drop_column("collection")
