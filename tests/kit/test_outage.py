"""What counts as "the database cannot be reached", on errors the real drivers raise.

Each error here is provoked for real: a port nobody listens on, a backend the
server terminates, a SQLite path that cannot be opened, and, for the other
side, statements that are simply wrong, which must stay bugs.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import psycopg
import pytest
import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from coursegate.config import sync_database_url
from coursegate.db import Database
from coursegate.kit.loops import PollingLoop
from coursegate.kit.outage import DatabaseConnectFailed, is_database_unreachable
from tests.servers import free_port


async def execute(database: Database, sql: str) -> None:
    async with database.connection() as conn:
        await conn.execute(text(sql))


async def raised(database: Database, sql: str) -> BaseException:
    with pytest.raises((DBAPIError, OSError)) as caught:
        await execute(database, sql)
    return caught.value


async def terminated_mid_transaction(database: Database, other: Database) -> None:
    async with database.connection() as conn:
        pid = (await conn.execute(text("select pg_backend_pid()"))).scalar_one()
        await execute(other, f"select pg_terminate_backend({int(pid)})")
        await conn.execute(text("select 1"))


def nobody_listening() -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/test"


async def test_a_refused_connection_is_unreachable_and_named_as_such() -> None:
    database = Database(nobody_listening(), pool_size=1)
    try:
        error = await raised(database, "select 1")
    finally:
        await database.dispose()
    assert isinstance(error, DatabaseConnectFailed)
    assert is_database_unreachable(error)


def test_psycopg_refused_as_dbos_meets_it_is_unreachable() -> None:
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(sync_database_url(nobody_listening()).replace("+psycopg", ""))
    assert is_database_unreachable(caught.value)


@pytest.mark.postgres_only
async def test_a_terminated_backend_is_unreachable_and_the_pool_drops_it_unused(
    db_url: str,
) -> None:
    database = Database(db_url, pool_size=1)
    other = Database(db_url, pool_size=1)
    try:
        # Killed under a running transaction: the statement fails, as unreachable.
        with pytest.raises(DBAPIError) as caught:
            await terminated_mid_transaction(database, other)
        assert is_database_unreachable(caught.value)

        # Killed while idle in the pool: the next checkout opens a fresh connection
        # instead of failing the request that would have been handed the dead one.
        async with database.connection() as conn:
            pid = (await conn.execute(text("select pg_backend_pid()"))).scalar_one()
        await execute(other, f"select pg_terminate_backend({int(pid)})")
        await asyncio.sleep(0.05)  # the event loop reads the server's goodbye
        async with database.connection() as conn:
            assert (await conn.execute(text("select pg_backend_pid()"))).scalar_one() != pid
    finally:
        await database.dispose()
        await other.dispose()


async def test_statements_that_are_wrong_stay_bugs(db_url: str) -> None:
    database = Database(db_url, pool_size=1)
    try:
        for sql in (
            "select * from no_such_table",
            "selec 1",
            "insert into tenants (id) values (null)",
        ):
            assert not is_database_unreachable(await raised(database, sql)), sql
    finally:
        await database.dispose()


def test_a_sqlite_file_that_cannot_be_opened_is_unreachable(tmp_path: Path) -> None:
    # The driver itself (aiosqlite runs it on a thread of its own, which outlives a
    # failed connect and would outlive this test's event loop).
    folder = tmp_path / "a-folder-not-a-file"
    folder.mkdir()
    with pytest.raises(sqlite3.OperationalError) as caught:
        sqlite3.connect(folder)
    assert is_database_unreachable(caught.value)
    locked = sqlite3.OperationalError("database is locked")
    assert not is_database_unreachable(locked)


async def test_a_loop_outlives_the_database_being_down_with_a_warning_per_attempt() -> None:
    database = Database(nobody_listening(), pool_size=1)
    calls = 0
    recovered = asyncio.Event()

    async def step() -> int:
        nonlocal calls
        calls += 1
        if calls <= 3:
            await execute(database, "select 1")
        recovered.set()
        return 0

    loop = PollingLoop("drill", step, idle_seconds=60, error_backoff_seconds=0.01)
    with structlog.testing.capture_logs() as logs:
        loop.start()
        async with asyncio.timeout(10):
            await recovered.wait()
        await loop.stop()
    await database.dispose()
    warnings = [e for e in logs if e["event"] == "database_unavailable"]
    assert len(warnings) == 3
    assert all(e["log_level"] == "warning" and "exc_info" not in e for e in warnings)
    assert {e["where"] for e in warnings} == {"background step failed"}
    assert all(e["error_class"] == "ConnectionRefusedError" for e in warnings)
    assert not [e for e in logs if e["log_level"] == "error"]
