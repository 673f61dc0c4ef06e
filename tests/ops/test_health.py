"""Liveness says the process is up; readiness says the database and schema are usable."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from coursegate import migrate
from coursegate.config import Settings
from coursegate.db import Database


async def test_healthz_and_readyz_when_all_is_well(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "migrations": "head"}


async def test_readyz_is_503_when_the_schema_is_behind(
    client: httpx.AsyncClient, database: Database
) -> None:
    await migrate.downgrade(database.engine, "base")
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["migrations"] == f"at none, expected {migrate.head_revision()}"
    assert (await client.get("/healthz")).status_code == 200


async def test_readyz_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    from coursegate.app import create_app

    unreachable = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    app: FastAPI = create_app(settings, database=unreachable)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        ready = await client.get("/readyz")
    await unreachable.dispose()
    assert ready.status_code == 503
    assert ready.json()["database"] == "unreachable"
