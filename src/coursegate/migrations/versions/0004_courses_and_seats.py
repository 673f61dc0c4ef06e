"""courses, provider course ids, seat orders and seats

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("program_id", sa.String(length=63), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("last_drop_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("access_period_days", sa.Integer(), nullable=False),
        sa.Column("certificate_validity_days", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "program_id"],
            ["programs.tenant_id", "programs.id"],
            name=op.f("fk_courses_tenant_id_program_id_programs"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_courses_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_courses")),
    )
    op.create_table(
        "course_external_ids",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("provider_id", sa.String(length=63), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("course_id", sa.String(length=63), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "course_id"],
            ["courses.tenant_id", "courses.id"],
            name=op.f("fk_course_external_ids_tenant_id_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "provider_id"],
            ["providers.tenant_id", "providers.id"],
            name=op.f("fk_course_external_ids_tenant_id_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "provider_id", "external_id", name=op.f("pk_course_external_ids")
        ),
    )
    op.create_index(
        "ix_course_external_ids_course",
        "course_external_ids",
        ["tenant_id", "course_id", "provider_id"],
        unique=True,
    )
    op.create_table(
        "seat_orders",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("order_ref", sa.String(length=128), nullable=False),
        sa.Column("course_id", sa.String(length=63), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "course_id"],
            ["courses.tenant_id", "courses.id"],
            name=op.f("fk_seat_orders_tenant_id_course_id_courses"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "order_ref", name=op.f("pk_seat_orders")),
    )
    op.create_table(
        "seats",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.String(length=63), nullable=False),
        sa.Column("order_ref", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("previously_dropped", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "course_id"],
            ["courses.tenant_id", "courses.id"],
            name=op.f("fk_seats_tenant_id_course_id_courses"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "order_ref"],
            ["seat_orders.tenant_id", "seat_orders.order_ref"],
            name=op.f("fk_seats_tenant_id_order_ref_seat_orders"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_seats")),
    )
    op.create_index(
        "ix_seats_course_status", "seats", ["tenant_id", "course_id", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_seats_course_status", table_name="seats")
    op.drop_table("seats")
    op.drop_table("seat_orders")
    op.drop_index("ix_course_external_ids_course", table_name="course_external_ids")
    op.drop_table("course_external_ids")
    op.drop_table("courses")
