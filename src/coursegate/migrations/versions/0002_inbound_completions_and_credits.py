"""programs, people, providers, completions, credits, events, inbound audit

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_events_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_events")),
    )
    op.create_table(
        "inbound_audit",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.String(length=63), nullable=False),
        sa.Column("key_id", sa.String(length=63), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=512), nullable=True),
        sa.Column("completion_id", sa.Uuid(), nullable=True),
        sa.Column("parked_id", sa.Uuid(), nullable=True),
        sa.Column("replay_of", sa.Uuid(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_inbound_audit_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_inbound_audit")),
    )
    with op.batch_alter_table("inbound_audit", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbound_audit_provider", ["tenant_id", "provider_id", "id"], unique=False
        )

    op.create_table(
        "people",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_people_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_people")),
    )
    op.create_table(
        "programs",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("jurisdiction", sa.String(length=32), nullable=False),
        sa.Column("hours_per_credit", sa.BigInteger(), nullable=False),
        sa.Column("identifier_namespace", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_programs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_programs")),
    )
    op.create_table(
        "credit_totals",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("program_id", sa.String(length=63), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("hours_total", sa.BigInteger(), nullable=False),
        sa.Column("credits_total", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "person_id"],
            ["people.tenant_id", "people.id"],
            name=op.f("fk_credit_totals_tenant_id_person_id_people"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "program_id"],
            ["programs.tenant_id", "programs.id"],
            name=op.f("fk_credit_totals_tenant_id_program_id_programs"),
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "program_id", "person_id", name=op.f("pk_credit_totals")
        ),
    )
    op.create_table(
        "person_identifiers",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "person_id"],
            ["people.tenant_id", "people.id"],
            name=op.f("fk_person_identifiers_tenant_id_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "namespace", "value", name=op.f("pk_person_identifiers")
        ),
    )
    with op.batch_alter_table("person_identifiers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_person_identifiers_person", ["tenant_id", "person_id"], unique=False
        )

    op.create_table(
        "providers",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("program_id", sa.String(length=63), nullable=False),
        sa.Column("scheme", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "program_id"],
            ["programs.tenant_id", "programs.id"],
            name=op.f("fk_providers_tenant_id_program_id_programs"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_providers")),
    )
    op.create_table(
        "completions",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("program_id", sa.String(length=63), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.String(length=63), nullable=False),
        sa.Column("course_id", sa.String(length=128), nullable=False),
        sa.Column("course_name", sa.String(length=512), nullable=True),
        sa.Column("content_hours", sa.BigInteger(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "person_id"],
            ["people.tenant_id", "people.id"],
            name=op.f("fk_completions_tenant_id_person_id_people"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "program_id"],
            ["programs.tenant_id", "programs.id"],
            name=op.f("fk_completions_tenant_id_program_id_programs"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "provider_id"],
            ["providers.tenant_id", "providers.id"],
            name=op.f("fk_completions_tenant_id_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_completions")),
    )
    with op.batch_alter_table("completions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_completions_person", ["tenant_id", "person_id", "id"], unique=False
        )
        batch_op.create_index(
            "uq_completions_one_per_course",
            ["tenant_id", "program_id", "person_id", "provider_id", "course_id"],
            unique=True,
        )

    op.create_table(
        "credits",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("program_id", sa.String(length=63), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("completion_id", sa.Uuid(), nullable=False),
        sa.Column("awarded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "program_id", "person_id"],
            ["credit_totals.tenant_id", "credit_totals.program_id", "credit_totals.person_id"],
            name=op.f("fk_credits_tenant_id_program_id_person_id_credit_totals"),
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "program_id", "person_id", "sequence", name=op.f("pk_credits")
        ),
    )
    with op.batch_alter_table("credits", schema=None) as batch_op:
        batch_op.create_index("uq_credits_id", ["tenant_id", "id"], unique=True)

    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("provider_id", sa.String(length=63), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("content_digest", sa.String(length=64), nullable=False),
        sa.Column("completion_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "provider_id"],
            ["providers.tenant_id", "providers.id"],
            name=op.f("fk_idempotency_keys_tenant_id_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "provider_id", "key", name=op.f("pk_idempotency_keys")
        ),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_keys_expiry", ["expires_at"], unique=False)

    op.create_table(
        "parked_requests",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.String(length=63), nullable=False),
        sa.Column("key_id", sa.String(length=63), nullable=True),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("person_digest", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "provider_id"],
            ["providers.tenant_id", "providers.id"],
            name=op.f("fk_parked_requests_tenant_id_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_parked_requests")),
    )
    with op.batch_alter_table("parked_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_parked_requests_waiting", ["tenant_id", "namespace", "person_digest"], unique=False
        )

    op.create_table(
        "provider_keys",
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("provider_id", sa.String(length=63), nullable=False),
        sa.Column("key_id", sa.String(length=63), nullable=False),
        sa.Column("secret_ref", sa.String(length=1100), nullable=True),
        sa.Column("secret_encrypted", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "provider_id"],
            ["providers.tenant_id", "providers.id"],
            name=op.f("fk_provider_keys_tenant_id_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "provider_id", "key_id", name=op.f("pk_provider_keys")
        ),
    )


def downgrade() -> None:
    op.drop_table("provider_keys")
    with op.batch_alter_table("parked_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_parked_requests_waiting")

    op.drop_table("parked_requests")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_keys_expiry")

    op.drop_table("idempotency_keys")
    with op.batch_alter_table("credits", schema=None) as batch_op:
        batch_op.drop_index("uq_credits_id")

    op.drop_table("credits")
    with op.batch_alter_table("completions", schema=None) as batch_op:
        batch_op.drop_index("uq_completions_one_per_course")
        batch_op.drop_index("ix_completions_person")

    op.drop_table("completions")
    op.drop_table("providers")
    with op.batch_alter_table("person_identifiers", schema=None) as batch_op:
        batch_op.drop_index("ix_person_identifiers_person")

    op.drop_table("person_identifiers")
    op.drop_table("credit_totals")
    op.drop_table("programs")
    op.drop_table("people")
    with op.batch_alter_table("inbound_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_audit_provider")

    op.drop_table("inbound_audit")
    op.drop_table("events")
