"""All SQL of the credit ledger."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, bindparam, insert, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.credits.ledger import credits_for
from coursegate.kit.sql import dialect_insert, dialect_of
from coursegate.models import Credit, CreditTotal
from coursegate.models.base import table_of, to_hundredths

_TOTALS = table_of(CreditTotal)
_CREDITS_INSERT = insert(table_of(Credit))


@functools.cache  # built once per dialect
def _add_hours_statement(dialect: str) -> Any:
    """`INSERT … ON CONFLICT DO UPDATE … RETURNING`: one statement that takes the
    per-person row lock (PostgreSQL) and adds the hours, so concurrent
    completions of one person serialise here and each sees the other's total."""
    stmt = dialect_insert(dialect, _TOTALS)
    # Integer hundredths on both sides, so `//` is exact integer division.
    total = type_coerce(_TOTALS.c.hours_total, BigInteger) + type_coerce(
        stmt.excluded.hours_total, BigInteger
    )
    return stmt.on_conflict_do_update(
        index_elements=[_TOTALS.c.tenant_id, _TOTALS.c.program_id, _TOTALS.c.person_id],
        set_={
            "hours_total": total,
            "credits_total": total // bindparam("per_credit", type_=BigInteger),
            "updated_at": stmt.excluded.updated_at,
        },
    ).returning(_TOTALS.c.hours_total)


class CreditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_hours(
        self,
        tenant_id: str,
        program_id: str,
        person_id: uuid.UUID,
        hours: Decimal,
        hours_per_credit: Decimal,
        at: datetime,
    ) -> Decimal:
        """Add to the pool; returns the new total. `credits_total` is kept equal to
        `floor(hours_total / hours_per_credit)` by the same statement."""
        result = await self.session.execute(
            _add_hours_statement(dialect_of(self.session)),
            {
                "tenant_id": tenant_id,
                "program_id": program_id,
                "person_id": person_id,
                "hours_total": hours,
                "credits_total": credits_for(hours, hours_per_credit),
                "per_credit": to_hundredths(hours_per_credit),
                "updated_at": at,
            },
        )
        total: Decimal = result.scalar_one()
        return total

    async def add_credits(self, rows: Sequence[dict[str, object]]) -> None:
        if rows:
            await self.session.execute(_CREDITS_INSERT, list(rows))

    async def totals(
        self, tenant_id: str, program_id: str, person_id: uuid.UUID
    ) -> CreditTotal | None:
        return await self.session.get(CreditTotal, (tenant_id, program_id, person_id))

    async def credits(
        self, tenant_id: str, program_id: str, person_id: uuid.UUID
    ) -> Sequence[Credit]:
        stmt = (
            select(Credit)
            .where(
                Credit.tenant_id == tenant_id,
                Credit.program_id == program_id,
                Credit.person_id == person_id,
            )
            .order_by(Credit.sequence)
        )
        return (await self.session.scalars(stmt)).all()
