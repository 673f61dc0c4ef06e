"""What every command shares: settings, the database run, errors as exit codes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from dbos import DBOS
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate import migrate
from coursegate.config import ConfigurationError, Settings, sync_database_url
from coursegate.db import Database
from coursegate.durable import DBOS_SCHEMA
from coursegate.kit.clock import SystemClock
from coursegate.kit.errors import DomainError, NotFound
from coursegate.kit.secrets import SecretBox, default_stores
from coursegate.observability import setup as setup_observability
from coursegate.providers.service import ProviderService
from coursegate.tenancy.repository import TenantRepository

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

TenantOpt = Annotated[str, typer.Option("--tenant", help="the tenant's slug")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON line")]
HostOpt = Annotated[str | None, typer.Option("--host", help="listen address")]
PortOpt = Annotated[int | None, typer.Option("--port", help="listen port")]


def load_settings() -> Settings:
    try:
        settings = Settings()
        settings.check()
    except (ConfigurationError, ValueError) as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    setup_observability(settings)
    return settings


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def run_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        database = Database(settings.resolved_database_url, pool_size=2)
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(run())
    except DomainError as exc:
        message = f": {exc.message}" if exc.message else ""
        detail = f" {json.dumps(exc.details)}" if exc.details else ""
        raise fail(f"{exc.code}{message}{detail}") from None


async def require_tenant(session: AsyncSession, tenant: str) -> None:
    """An unknown tenant is named as such, not as a confusing error about what it would own."""
    if await TenantRepository(session).get(tenant) is None:
        raise NotFound(f"no tenant {tenant}")


def provider_service(session: AsyncSession, settings: Settings) -> ProviderService:
    return ProviderService(
        session, SystemClock(), SecretBox(settings.master_keys()), default_stores()
    )


def upgrade_database(settings: Settings) -> None:
    """Our tables (Alembic), then DBOS's system tables, so that any process can enqueue."""
    run_db(settings, lambda database: migrate.upgrade(database.engine))
    DBOS.migrate(sync_database_url(settings.resolved_database_url), schema=DBOS_SCHEMA)
