"""POST /v1/connectors/{id}/runs: a run started now, durably, on a worker, as
`coursegate pull` runs it; refused while the connector runs, and starting nothing then."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from dbos import DBOS, DBOSClient, WorkflowHandleAsync
from fastapi import FastAPI
from sqlalchemy import func, select

from coursegate import durable
from coursegate.app import create_app
from coursegate.config import Settings, sync_database_url
from coursegate.connectors.schedule import PULL_WORKFLOW, run_now_workflow_id
from coursegate.db import Database
from coursegate.enrollments.adapters import adapters_from_settings
from coursegate.kit.clock import FrozenClock
from coursegate.models import Authorization, ConnectorRun
from tests.conftest import bearer, create_tenant
from tests.connectors.conftest import SECRET_ENV, add_datapass_connector, running_run
from tests.connectors.fake_partners import DataPassFake, datapass_entry

NEVER = "0 0 1 1 *"
"""A schedule that does not fire while a test runs (workers tick each real minute)."""
PATH = "/v1/connectors/cnous/runs"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The fake partner listens on loopback, which the forgery guard refuses by default.
    return settings.model_copy(update={"allow_private_webhook_targets": True})


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[DataPassFake]:
    with DataPassFake() as partner:
        # A worker resolves the connector's secret reference from its environment.
        monkeypatch.setenv(SECRET_ENV, partner.client_secret)
        partner.entries = [datapass_entry(n) for n in range(1, 6)]
        yield partner


@pytest.fixture
async def app(settings: Settings, database: Database, clock: FrozenClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database=database, clock=clock)
    try:
        yield application
    finally:
        application.state.enqueuer.close()


@pytest.fixture
async def keys(database: Database, clock: FrozenClock, fake: DataPassFake) -> dict[str, str]:
    made = {slug: await create_tenant(database, clock, slug) for slug in ("acme", "globex")}
    await add_datapass_connector(database, clock, fake, schedule=NEVER)
    return made


@pytest.fixture
async def worker(
    settings: Settings, database: Database, clock: FrozenClock, keys: dict[str, str]
) -> AsyncIterator[None]:
    """Durable execution in this process as a worker: it takes the queued pull workflows."""
    await durable.launch(
        settings, database, durable.Role.WORKER, clock, adapters_from_settings(settings)
    )
    try:
        yield
    finally:
        durable.shutdown()


def pull_workflows(settings: Settings) -> list[str]:
    """The ids of the pull workflows queued or run so far, read as any process would."""
    client = DBOSClient(
        system_database_url=sync_database_url(settings.resolved_database_url),
        dbos_system_schema=durable.DBOS_SCHEMA,
    )
    try:
        return sorted(w.workflow_id for w in client.list_workflows(name=PULL_WORKFLOW))
    finally:
        client.destroy()


async def runs(database: Database) -> list[ConnectorRun]:
    async with database.transaction() as session:
        stmt = select(ConnectorRun).order_by(ConnectorRun.id)
        return list((await session.scalars(stmt)).all())


async def start(client: httpx.AsyncClient, key: str, path: str = PATH) -> httpx.Response:
    return await client.post(path, headers=bearer(key))


async def test_a_run_is_recorded_and_its_workflow_queued_once_while_it_runs(
    client: httpx.AsyncClient, settings: Settings, database: Database, keys: dict[str, str]
) -> None:
    """No worker in this process: the run waits, `running`, for one to take it."""
    response = await start(client, keys["acme"])
    assert response.status_code == 202, response.text
    run = response.json()
    assert uuid.UUID(run["id"]).version == 7
    assert {k: run[k] for k in ("connector_id", "trigger", "status", "dry_run", "since")} == {
        "connector_id": "cnous",
        "trigger": "manual",
        "status": "running",
        "dry_run": False,
        "since": None,
    }
    assert (run["started_at"], run["ended_at"]) == ("2026-06-10T12:00:00.000Z", None)
    assert (run["pages"], run["created"], run["skipped"], run["rejected"]) == (0, 0, 0, 0)
    listed = await client.get(PATH, headers=bearer(keys["acme"]))
    assert listed.json()["data"] == [run]

    again = await start(client, keys["acme"])
    assert again.status_code == 409, again.text
    assert again.json() == {
        "error": "RUN_IN_PROGRESS",
        "message": "connector cnous is running already",
    }
    assert [str(r.id) for r in await runs(database)] == [run["id"]]
    expected = run_now_workflow_id("acme", "cnous", uuid.UUID(run["id"]))
    assert await asyncio.to_thread(pull_workflows, settings) == [expected]


async def test_a_worker_takes_the_run_over_and_finishes_it(
    client: httpx.AsyncClient,
    worker: None,
    database: Database,
    keys: dict[str, str],
    fake: DataPassFake,
) -> None:
    response = await start(client, keys["acme"])
    assert response.status_code == 202, response.text
    run_id = response.json()["id"]
    handle: WorkflowHandleAsync[dict[str, Any]] = await DBOS.retrieve_workflow_async(
        run_now_workflow_id("acme", "cnous", uuid.UUID(run_id))
    )
    outcome = await asyncio.wait_for(handle.get_result(), 60)
    assert outcome == {"status": "succeeded", "run_id": run_id}

    [run] = (await client.get(PATH, headers=bearer(keys["acme"]))).json()["data"]
    assert (run["id"], run["trigger"], run["status"]) == (run_id, "manual", "succeeded")
    assert (run["pages"], run["created"], run["rejected"]) == (1, 5, 0)
    async with database.transaction() as session:
        made = await session.scalar(select(func.count()).select_from(Authorization))
    assert made == 5
    connector = (await client.get("/v1/connectors/cnous", headers=bearer(keys["acme"]))).json()
    assert connector["last_run"] == run

    # Finished: the next one starts, and reads from the watermark it left.
    fake.entries.append(datapass_entry(6))
    following = await start(client, keys["acme"])
    assert following.status_code == 202, following.text
    handle = await DBOS.retrieve_workflow_async(
        run_now_workflow_id("acme", "cnous", uuid.UUID(following.json()["id"]))
    )
    assert (await asyncio.wait_for(handle.get_result(), 60))["status"] == "succeeded"
    newest = (await client.get(PATH, headers=bearer(keys["acme"]))).json()["data"][0]
    assert (newest["id"], newest["created"]) == (following.json()["id"], 1)


async def test_a_run_held_elsewhere_refuses_until_its_heartbeat_is_stale(
    client: httpx.AsyncClient,
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    keys: dict[str, str],
) -> None:
    """A run another process holds (a scheduled one, a `coursegate pull`) is the same
    lock; one silent for an hour is abandoned, as the CLI's run would find it."""
    held_id = uuid.uuid4()
    async with database.transaction() as session:
        session.add(running_run(clock.now() - timedelta(minutes=5), clock.now(), run_id=held_id))
    refused = await start(client, keys["acme"])
    assert (refused.status_code, refused.json()["error"]) == (409, "RUN_IN_PROGRESS")
    assert len(await runs(database)) == 1
    assert await asyncio.to_thread(pull_workflows, settings) == []

    clock.advance(timedelta(hours=1, seconds=1))
    started = await start(client, keys["acme"])
    assert started.status_code == 202, started.text
    found = {str(r.id): r for r in await runs(database)}
    assert set(found) == {str(held_id), started.json()["id"]}
    held, new = found[str(held_id)], found[started.json()["id"]]
    assert (held.status, held.error_class) == ("failed", "abandoned")
    assert new.status == "running"


@pytest.mark.parametrize(
    "path",
    ["/v1/connectors/nope/runs", "/v1/connectors/Not%20A%20Slug/runs", "/v1/connectors/x/runs"],
)
async def test_an_unknown_or_malformed_connector_is_404(
    client: httpx.AsyncClient, settings: Settings, keys: dict[str, str], path: str
) -> None:
    response = await start(client, keys["acme"], path)
    assert (response.status_code, response.json()["error"]) == (404, "NOT_FOUND")
    assert await asyncio.to_thread(pull_workflows, settings) == []


async def test_another_tenants_connector_is_404_and_not_run(
    client: httpx.AsyncClient, settings: Settings, database: Database, keys: dict[str, str]
) -> None:
    response = await start(client, keys["globex"])
    assert (response.status_code, response.json()["error"]) == (404, "NOT_FOUND")
    assert await runs(database) == []
    assert await asyncio.to_thread(pull_workflows, settings) == []


async def test_unauthenticated_calls_are_401_and_start_nothing(
    client: httpx.AsyncClient, settings: Settings, database: Database, keys: dict[str, str]
) -> None:
    for headers in ({}, bearer("cg_nope_" + "x" * 40)):
        response = await client.post(PATH, headers=headers)
        assert (response.status_code, response.json()["error"]) == (401, "UNAUTHORIZED")
    assert await runs(database) == []
    assert await asyncio.to_thread(pull_workflows, settings) == []
