"""The SQL of a master key rotation: every column that holds ciphertext, read and replaced by key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Table, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.models import ProviderKey, WebhookEndpoint


def _column(model: Any, name: str) -> Column[Any]:
    table: Table = model.__table__
    return table.c[name]


# Every column of every table that holds a secret encrypted under the master key.
# A test compares this with the models, so a new one cannot be left out of rotations.
CIPHERTEXT_COLUMNS: tuple[Column[Any], ...] = (
    _column(ProviderKey, "secret_encrypted"),
    _column(WebhookEndpoint, "secret_encrypted"),
    _column(WebhookEndpoint, "previous_secret_encrypted"),
)


def column_name(column: Column[Any]) -> str:
    return f"{column.table.name}.{column.name}"


RowKey = tuple[Any, ...]


class CiphertextRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(
        self, column: Column[Any], after: RowKey | None, limit: int
    ) -> Sequence[tuple[RowKey, str]]:
        """The next rows holding a ciphertext in this column, in primary key order (all tenants)."""
        key = list(column.table.primary_key.columns)
        query = select(*key, column).where(column.is_not(None)).order_by(*key).limit(limit)
        if after is not None:
            query = query.where(tuple_(*key) > tuple_(*after))
        rows = (await self.session.execute(query)).all()
        return [(tuple(row[: len(key)]), str(row[len(key)])) for row in rows]

    async def replace(self, column: Column[Any], row: RowKey, old: str, new: str) -> bool:
        """Only if the row still holds `old`: a secret changed meanwhile is not overwritten."""
        key = list(column.table.primary_key.columns)
        statement = (
            update(column.table)
            .where(*(part == value for part, value in zip(key, row, strict=True)))
            .where(column == old)
            .values({column.name: new})
        )
        result = await self.session.execute(statement)
        return bool(getattr(result, "rowcount", 0) == 1)
