"""Small SQL helpers shared by repositories."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import JSON, Table, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.ext.asyncio import AsyncSession

_PG = PGDialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves its __init__ untyped


def dialect_insert(dialect: str, table: Table) -> Any:
    """An INSERT that knows `ON CONFLICT`: PostgreSQL's and SQLite's builders differ in type only."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's transaction: for statements that
    SQLAlchemy would send row by row.

    SQLAlchemy sends BEGIN lazily, with its first statement: a raw statement sent
    before any other would run outside the transaction and survive its rollback.
    So when none has begun yet, a trivial statement goes through SQLAlchemy first.
    """
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        await connection.exec_driver_sql("SELECT 1")
    return driver


@cache
def _unnest_insert(
    table: Table, columns: tuple[str, ...]
) -> tuple[str, list[Callable[[Any], Any]]]:
    """`INSERT … SELECT * FROM unnest($1::type[], …)` and how each column's values are
    passed (JSON as text, everything else as the driver takes it)."""
    casts: list[str] = []
    converters: list[Callable[[Any], Any]] = []
    for n, name in enumerate(columns, 1):
        column_type = table.c[name].type
        implementation = column_type.dialect_impl(_PG)
        casts.append(f"${n}::{implementation.compile(dialect=_PG)}[]")
        is_json = isinstance(implementation, JSON)
        converters.append(json.dumps if is_json else _same)
    # Names and types come from the table's definition, never from input.
    names = ", ".join(columns)
    sql = f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({', '.join(casts)})"  # noqa: S608
    return sql, converters


def _same(value: Any) -> Any:
    return value


async def insert_rows(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Many rows, every one with the same keys, in one statement.

    On PostgreSQL one array per column and `unnest`: the server plans and runs one
    statement instead of one per row (SQLAlchemy's executemany), which more than
    halves the cost of writing a sweep's 500 events. Values must be what the
    column's type would send (aware datetimes, UUIDs). SQLite takes executemany.
    """
    if not rows:
        return
    if dialect_of(session) != "postgresql":
        await session.execute(insert(table), list(rows))
        return
    columns = tuple(rows[0])
    sql, converters = _unnest_insert(table, columns)
    arrays = [
        [convert(row[name]) for row in rows]
        for name, convert in zip(columns, converters, strict=True)
    ]
    await (await driver_connection(session)).execute(sql, *arrays)
