"""The migrations are the schema: they produce exactly the models' metadata."""

from __future__ import annotations

from coursegate import migrate
from coursegate.db import Database


async def test_migrated_database_matches_the_models(database: Database) -> None:
    assert await migrate.current_revision(database.engine) == migrate.head_revision()
    assert await migrate.schema_drift(database.engine) == []


async def test_downgrade_to_base_and_back(database: Database) -> None:
    await migrate.upgrade(database.engine)  # idempotent at head
    await migrate.downgrade(database.engine, "base")
    assert await migrate.current_revision(database.engine) is None
    await migrate.upgrade(database.engine)
    assert await migrate.schema_drift(database.engine) == []
