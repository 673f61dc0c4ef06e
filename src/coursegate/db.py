"""Engines and sessions; the request or job boundary commits or rolls back, services never do.

SQLite is configured as the architecture found it must be to be shared with
DBOS: WAL, a long busy timeout, and `BEGIN IMMEDIATE` so that a
read-then-write transaction takes the write lock up front instead of failing
with "database is locked" halfway through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool

from coursegate.kit.outage import DatabaseConnectFailed

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A server that does not answer a connection attempt is down for the caller's purposes:
# answer 503 after this long rather than hold the request for asyncpg's default minute.
CONNECT_TIMEOUT_S = 10.0


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    prefix = "sqlite+aiosqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix) :].split("?", 1)[0]
    return None if path in {"", ":memory:"} else Path(path)


def create_engine(url: str, *, pool_size: int = 20, echo: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # One connection: SQLite has a single writer anyway, and queueing in the
        # pool measured a four times lower p99 than contending on the file lock.
        engine = create_async_engine(
            url,
            echo=echo,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _configure_sqlite(engine)
        return engine
    # The pool holds as many connections as requests in flight: a connection
    # opened for overflow and closed on return must prepare every statement and
    # introspect every type again, which measured as the largest CPU cost of the
    # inbound path. No pre-ping either: it costs a round trip on every checkout
    # (see docs/benchmarks.md); `_configure_postgres` drops the connections the
    # server closed while they sat in the pool, for free.
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        pool_recycle=3600,
        connect_args={"server_settings": {"timezone": "UTC"}, "timeout": CONNECT_TIMEOUT_S},
    )
    _configure_postgres(engine)
    return engine


def _configure_postgres(engine: AsyncEngine) -> None:
    """Survive a restart of the server without failing a request after it is back.

    When PostgreSQL stops, it closes every connection; asyncpg reads the end of the
    stream as soon as the event loop runs and marks the connection closed. A
    connection found closed at checkout is discarded and a fresh one opened in its
    place (the pool's own reconnect on `DisconnectionError`), so no request is handed
    one that died while idle. This reads a flag where a pre-ping would send a query.
    A failure to connect at all is raised as `DatabaseConnectFailed`, which the
    error handlers answer with 503.
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_conn.driver_connection.is_closed():
            raise DisconnectionError("the server closed this connection while it was idle")

    @event.listens_for(sync_engine, "do_connect")
    def _on_connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except OSError as exc:
            raise DatabaseConnectFailed(f"cannot connect to the database: {exc}") from exc


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver, so that `begin` below decides.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The application's engine and session factory, built once per process."""

    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = url
        self.engine = create_engine(url, pool_size=pool_size)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """The unit of work of a request or a job: commit on success, roll back on any error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection in a transaction, for hot paths that leave the ORM."""
        async with self.engine.begin() as conn:
            yield conn

    async def dispose(self) -> None:
        await self.engine.dispose()
