"""Small SQL helpers shared by repositories."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_insert(dialect: str, table: Table) -> Any:
    """An INSERT that knows `ON CONFLICT`: PostgreSQL's and SQLite's builders differ in type only."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name
