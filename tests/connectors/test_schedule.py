"""Connectors on their schedules: the cron matcher, and DBOS ticks that pull each due
connector once however many workers tick the same minute."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from dbos import DBOS, SetWorkflowID, WorkflowHandleAsync
from sqlalchemy import select, update

from coursegate import durable
from coursegate.config import Settings
from coursegate.connectors.schedule import (
    RUN_NAMESPACE,
    connector_ticks,
    pull_workflow_id,
)
from coursegate.connectors.schemas import check_cron, cron_matches
from coursegate.db import Database
from coursegate.enrollments.adapters import adapters_from_settings
from coursegate.kit.clock import FrozenClock
from coursegate.models import Authorization, Connector, ConnectorRun
from tests.conftest import create_tenant
from tests.connectors.conftest import SECRET_ENV, add_datapass_connector
from tests.connectors.fake_partners import DataPassFake, datapass_entry


@pytest.mark.parametrize(
    ("expression", "at", "fires"),
    [
        ("0 1 * * *", "2026-06-10T01:00", True),
        ("0 1 * * *", "2026-06-10T01:01", False),
        ("0 1 * * *", "2026-06-10T02:00", False),
        ("*/15 * * * *", "2026-06-10T07:45", True),
        ("*/15 * * * *", "2026-06-10T07:50", False),
        ("0 9-17 * * 1-5", "2026-06-12T12:00", True),  # a Friday
        ("0 9-17 * * 1-5", "2026-06-13T12:00", False),  # a Saturday
        ("0 0 * * 0", "2026-06-14T00:00", True),  # Sunday is 0
        ("30 6 1,15 * *", "2026-06-15T06:30", True),
        ("30 6 1,15 * *", "2026-06-16T06:30", False),
        # Day of month and weekday both restricted: either one is enough, as in cron.
        ("0 0 13 * 5", "2026-06-12T00:00", True),  # Friday the 12th
        ("0 0 13 * 5", "2026-06-13T00:00", True),  # Saturday the 13th
        ("0 0 13 * 5", "2026-06-14T00:00", False),
        ("0 0 * 2 *", "2026-06-01T00:00", False),
    ],
)
def test_cron_matches(expression: str, at: str, fires: bool) -> None:
    assert check_cron(expression) == expression
    assert cron_matches(expression, datetime.fromisoformat(at).replace(tzinfo=UTC)) is fires


def test_cron_matches_in_utc_whatever_the_offset_given() -> None:
    paris = datetime.fromisoformat("2026-06-10T03:00+02:00")
    assert cron_matches("0 1 * * *", paris)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[DataPassFake]:
    with DataPassFake() as partner:
        monkeypatch.setenv(SECRET_ENV, partner.client_secret)
        partner.entries = [datapass_entry(n) for n in range(1, 31)]
        yield partner


@pytest.fixture
async def launched(
    settings: Settings, database: Database, clock: FrozenClock, fake: DataPassFake
) -> AsyncIterator[Settings]:
    allowed = settings.model_copy(update={"allow_private_webhook_targets": True})
    await create_tenant(database, clock, "acme")
    for connector_id, schedule in (("cnous", "0 1 * * *"), ("hourly", "0 * * * *")):
        await add_datapass_connector(
            database, clock, fake, connector_id=connector_id, schedule=schedule
        )
    await durable.launch(
        allowed, database, durable.Role.API, clock, adapters_from_settings(allowed)
    )
    try:
        yield allowed
    finally:
        durable.shutdown()


async def tick(at: datetime, worker: str) -> int:
    with SetWorkflowID(f"test-tick-{worker}-{at:%H%M}"):
        return await connector_ticks(at, None)


async def finished(tenant_id: str, connector_id: str, at: datetime) -> dict[str, str]:
    workflow_id = pull_workflow_id(tenant_id, connector_id, at)
    handle: WorkflowHandleAsync[dict[str, str]] = await DBOS.retrieve_workflow_async(workflow_id)
    return await handle.get_result()


async def runs(database: Database) -> list[ConnectorRun]:
    async with database.transaction() as session:
        return list((await session.scalars(select(ConnectorRun))).all())


async def test_two_workers_ticking_the_same_minute_pull_once(
    launched: Settings, database: Database, fake: DataPassFake
) -> None:
    one_am = datetime(2026, 6, 10, 1, 0, tzinfo=UTC)
    assert await tick(one_am, "a") == 2  # both connectors fire at 01:00
    assert await tick(one_am, "b") == 2
    for connector_id in ("cnous", "hourly"):
        assert (await finished("acme", connector_id, one_am))["status"] == "succeeded"
    found = await runs(database)
    assert sorted((r.connector_id, r.trigger, r.status) for r in found) == [
        ("cnous", "schedule", "succeeded"),
        ("hourly", "schedule", "succeeded"),
    ]
    by_connector = {r.connector_id: r for r in found}
    assert by_connector["cnous"].id == uuid.uuid5(
        RUN_NAMESPACE, pull_workflow_id("acme", "cnous", one_am)
    )
    async with database.transaction() as session:
        created = (await session.scalars(select(Authorization))).all()
    assert len(created) == 60  # 30 per connector, each once
    assert len(fake.tokens_issued) == 2


async def test_only_enabled_connectors_whose_cron_fires_are_pulled(
    launched: Settings, database: Database, fake: DataPassFake
) -> None:
    two_am = datetime(2026, 6, 10, 2, 0, tzinfo=UTC)
    assert await tick(two_am - timedelta(minutes=1), "a") == 0
    async with database.transaction() as session:
        await session.execute(
            update(Connector).where(Connector.id == "hourly").values(enabled=False)
        )
    assert await tick(two_am, "a") == 0
    assert await runs(database) == []
    assert fake.requests == []
