"""connector rejects kept once per record and version

Revision ID: 0012
Revises: 0011
"""

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _digest(collection: str | None, raw: Any) -> str:
    """As the runner computes it (the collection a reject stored without one came from is
    its kind's first; an older row without one is keyed on null, which no new row is)."""
    text = json.dumps(
        {"collection": collection, "raw": raw},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("connector_rejects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
    rejects = sa.table(
        "connector_rejects",
        sa.column("tenant_id", sa.String()),
        sa.column("connector_id", sa.String()),
        sa.column("id", sa.Uuid()),
        sa.column("collection", sa.String()),
        sa.column("raw", _JSON),
        sa.column("digest", sa.String()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            rejects.c.tenant_id,
            rejects.c.connector_id,
            rejects.c.id,
            rejects.c.collection,
            rejects.c.raw,
        ).order_by(rejects.c.tenant_id, rejects.c.connector_id, rejects.c.id)
    ).all()
    seen: set[tuple[str, str, str]] = set()
    for tenant_id, connector_id, reject_id, collection, raw in rows:
        digest = _digest(collection, raw)
        if (tenant_id, connector_id, digest) in seen:
            # Copies piled up before this revision stay, each keyed on itself; the first
            # of them is the one later runs bring up to date.
            digest = _digest(collection, {"copy_of": raw, "id": str(reject_id)})
        seen.add((tenant_id, connector_id, digest))
        bind.execute(
            rejects.update()
            .where(rejects.c.tenant_id == tenant_id, rejects.c.id == reject_id)
            .values(digest=digest)
        )
    with op.batch_alter_table("connector_rejects", schema=None) as batch_op:
        batch_op.alter_column("digest", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index(
            "uq_connector_rejects_digest", ["tenant_id", "connector_id", "digest"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("connector_rejects", schema=None) as batch_op:
        batch_op.drop_index("uq_connector_rejects_digest")
        batch_op.drop_column("digest")
