"""Shared fixtures: every database-touching test runs on SQLite and on PostgreSQL.

Each test gets its own database built by the migrations: a copy of a migrated
SQLite file, or a PostgreSQL database cloned from a migrated template. The
PostgreSQL half runs whenever a server answers at COURSEGATE_TEST_POSTGRES_URL;
otherwise it is skipped and the run says so at the end. With
COURSEGATE_TEST_REQUIRE_POSTGRES=1 (CI) an unreachable server is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from dbos import DBOS
from fastapi import FastAPI

from coursegate import migrate
from coursegate.app import create_app
from coursegate.config import Settings, sync_database_url
from coursegate.db import Database
from coursegate.durable import DBOS_SCHEMA
from coursegate.kit.clock import FrozenClock

POSTGRES_URL = os.environ.get(
    "COURSEGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("COURSEGATE_TEST_REQUIRE_POSTGRES", "") in {"1", "true", "yes"}
T0 = datetime(2026, 6, 10, 12, 0, 0, tzinfo=UTC)

_postgres_error: str | None = None
_postgres_checked = False
_postgres_used = 0
# Browser tests (tests/console) count here too, so the run says plainly if none ran.
browser_tally: dict[str, Any] = {"used": 0, "missing": None}
# So do the runs against Stoplight Prism (tests/connectors), which need Node.js.
prism_tally: dict[str, Any] = {"used": 0, "missing": None}


def _admin_url(dbname: str | None = None) -> str:
    base, _, current = POSTGRES_URL.rpartition("/")
    return f"{base}/{dbname or current}"


def postgres_available() -> bool:
    global _postgres_checked, _postgres_error
    if not _postgres_checked:
        _postgres_checked = True
        try:
            with psycopg.connect(_admin_url(), connect_timeout=3) as conn:
                conn.execute("select 1")
        except psycopg.Error as exc:
            _postgres_error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    return _postgres_error is None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long tests first: xdist hands tests out in this order, so the workers start on
    them while the short ones fill the gaps, instead of one worker ending the run alone."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its PostgreSQL tally to the controller, which prints the summary."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["postgres_used"] = _postgres_used
        output["postgres_error"] = _postgres_error
        output["browser_used"] = browser_tally["used"]
        output["browser_missing"] = browser_tally["missing"]
        output["prism_used"] = prism_tally["used"]
        output["prism_missing"] = prism_tally["missing"]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    global _postgres_used, _postgres_error
    output = getattr(node, "workeroutput", {})
    _postgres_used += output.get("postgres_used", 0)
    _postgres_error = _postgres_error or output.get("postgres_error")
    browser_tally["used"] += output.get("browser_used", 0)
    browser_tally["missing"] = browser_tally["missing"] or output.get("browser_missing")
    prism_tally["used"] += output.get("prism_used", 0)
    prism_tally["missing"] = prism_tally["missing"] or output.get("prism_missing")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _postgres_error is not None:
        terminalreporter.write_line(
            f"PostgreSQL tests SKIPPED: no server at {POSTGRES_URL} ({_postgres_error})",
            red=True,
        )
    elif _postgres_used:
        terminalreporter.write_line(
            f"PostgreSQL tests ran: {_postgres_used} databases at {POSTGRES_URL}", green=True
        )
    if browser_tally["missing"]:
        terminalreporter.write_line(f"Browser tests SKIPPED: {browser_tally['missing']}", red=True)
    elif browser_tally["used"]:
        terminalreporter.write_line(
            f"Browser tests ran: {browser_tally['used']} pages in Chromium", green=True
        )
    if prism_tally["missing"]:
        terminalreporter.write_line(f"Prism runs SKIPPED: {prism_tally['missing']}", red=True)
    elif prism_tally["used"]:
        terminalreporter.write_line(
            f"Prism runs: {prism_tally['used']} OneRoster runs against 1EdTech's description",
            green=True,
        )


def _migrate(url: str) -> None:
    async def run() -> None:
        database = Database(url, pool_size=1)
        try:
            await migrate.upgrade(database.engine)
        finally:
            await database.dispose()

    asyncio.run(run())
    DBOS.migrate(sync_database_url(url), schema=DBOS_SCHEMA)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    _migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    if not postgres_available():
        message = f"PostgreSQL unreachable at {POSTGRES_URL}: {_postgres_error}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    name = f"cg_template_{os.getpid()}"
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    _migrate(_admin_url(name).replace("postgresql://", "postgresql+asyncpg://", 1))
    yield name
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for this test, on each engine in turn."""
    global _postgres_used
    if request.param == "sqlite":
        if request.node.get_closest_marker("postgres_only"):
            pytest.skip("PostgreSQL only")
        path = tmp_path / "coursegate.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    name = f"cg_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    _postgres_used += 1
    try:
        yield _admin_url(name).replace("postgresql://", "postgresql+asyncpg://", 1)
    finally:
        with psycopg.connect(_admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url,
        var_dir=tmp_path / "var",
        access_log=True,
        scheduler_poll_seconds=0.5,
        _env_file=None,
    )


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.resolved_database_url, pool_size=5)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def app(settings: Settings, database: Database, clock: FrozenClock) -> FastAPI:
    return create_app(settings, database=database, clock=clock)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def create_tenant(database: Database, clock: FrozenClock, slug: str, **kwargs: Any) -> str:
    """A tenant and its first key, through the service the CLI uses; returns the key."""
    from coursegate.tenancy.service import TenancyService

    async with database.transaction() as session:
        _, _, key = await TenancyService(session, clock).create_tenant(slug, **kwargs)
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def acme(database: Database, clock: FrozenClock) -> str:
    """The API key of tenant `acme`."""
    return await create_tenant(database, clock, "acme")


@pytest.fixture
async def globex(database: Database, clock: FrozenClock) -> str:
    """The API key of tenant `globex`, the other tenant of cross-tenant tests."""
    return await create_tenant(database, clock, "globex")
