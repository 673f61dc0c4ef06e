"""The migrations are the schema: they produce exactly the models' metadata."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from coursegate import migrate
from coursegate.connectors.repository import stored_watermarks
from coursegate.db import Database
from coursegate.models import Connector


async def test_migrated_database_matches_the_models(database: Database) -> None:
    assert await migrate.current_revision(database.engine) == migrate.head_revision()
    assert await migrate.schema_drift(database.engine) == []


async def test_downgrade_to_base_and_back(database: Database) -> None:
    await migrate.upgrade(database.engine)  # idempotent at head
    await migrate.downgrade(database.engine, "base")
    assert await migrate.current_revision(database.engine) is None
    await migrate.upgrade(database.engine)
    assert await migrate.schema_drift(database.engine) == []


async def test_0008_gives_a_datapass_watermark_to_its_collection(database: Database) -> None:
    """Rows written as 0007 knew them come out of 0008 with the watermark per collection."""
    await migrate.downgrade(database.engine, "0007")
    at = datetime(2026, 6, 1, 9, 30, 0, 250000, tzinfo=UTC)
    async with database.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tenants (id, timezone, created_at, updated_at)"
                " VALUES ('acme', 'UTC', :at, :at)"
            ),
            {"at": at},
        )
        for connector_id, watermark in (("cnous", at), ("fresh", None)):
            await conn.execute(
                text(
                    "INSERT INTO connectors (tenant_id, id, kind, schedule, config, enabled,"
                    " watermark, created_at, updated_at) VALUES ('acme', :id, 'datapass',"
                    " '0 1 * * *', '{}', true, :watermark, :at, :at)"
                ),
                {"id": connector_id, "watermark": watermark, "at": at},
            )
    await migrate.upgrade(database.engine)
    async with database.transaction() as session:
        moved = await session.get(Connector, ("acme", "cnous"))
        fresh = await session.get(Connector, ("acme", "fresh"))
        assert moved is not None
        assert fresh is not None
        assert moved.watermark == at
        assert stored_watermarks(moved) == {"authorization_requests": at}
        assert (fresh.watermark, fresh.watermarks) == (None, None)
