"""A workflow enqueued inside a request's transaction runs if and only if it commits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from dbos import DBOS
from fastapi import APIRouter, FastAPI

from coursegate import durable
from coursegate.app import create_app
from coursegate.config import Settings
from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.kit.errors import DomainError
from coursegate.web import Session

RUNS: list[str] = []


@DBOS.workflow()
async def record_marker(marker: str) -> str:
    RUNS.append(marker)
    return marker


class Refused(DomainError):
    code = "REFUSED"
    status = 422


probe = APIRouter()


@probe.post("/probe/enqueue/{marker}")
async def enqueue_then_decide(marker: str, commit: bool, session: Session) -> dict[str, str]:
    enqueuer: durable.Enqueuer = probe_app_state["enqueuer"]
    workflow_id = await enqueuer.enqueue(
        session, "record_marker", marker, workflow_id=f"probe-{marker}"
    )
    if not commit:
        raise Refused("the request failed after enqueueing")
    return {"workflow_id": workflow_id}


probe_app_state: dict[str, durable.Enqueuer] = {}


@pytest.fixture
async def worker_app(
    settings: Settings, database: Database, clock: FrozenClock
) -> AsyncIterator[FastAPI]:
    app = create_app(settings, database=database, clock=clock, extra_routers=[probe])
    probe_app_state["enqueuer"] = app.state.enqueuer
    await durable.launch(settings, database, durable.Role.WORKER, clock)
    try:
        yield app
    finally:
        durable.shutdown()
        app.state.enqueuer.close()


async def _eventually(predicate: Callable[[], bool], within_s: float = 15.0) -> bool:
    deadline = asyncio.get_running_loop().time() + within_s
    while asyncio.get_running_loop().time() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_enqueued_workflow_runs_only_when_the_transaction_commits(
    worker_app: FastAPI,
) -> None:
    committed, rolled_back = uuid.uuid4().hex, uuid.uuid4().hex
    transport = httpx.ASGITransport(app=worker_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        ok = await client.post(f"/probe/enqueue/{committed}", params={"commit": "true"})
        refused = await client.post(f"/probe/enqueue/{rolled_back}", params={"commit": "false"})
    assert ok.status_code == 200
    assert refused.status_code == 422

    assert await _eventually(lambda: committed in RUNS), "the committed workflow never ran"
    # Its body has run; DBOS records the outcome just after, so wait for that too.
    for _ in range(450):
        status = await DBOS.get_workflow_status_async(f"probe-{committed}")
        if status is not None and status.status == "SUCCESS":
            break
        await asyncio.sleep(0.1)
    assert status is not None
    assert status.status == "SUCCESS"

    # The rolled-back one: no row in DBOS's tables, and it never runs.
    assert await DBOS.get_workflow_status_async(f"probe-{rolled_back}") is None
    await asyncio.sleep(2.0)
    assert rolled_back not in RUNS
    assert RUNS.count(committed) == 1
