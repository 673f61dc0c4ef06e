"""Runs of a `datapass` connector against a real fake partner on loopback, on both
databases: the backlog, incremental runs, re-runs, a partner failing mid-pagination,
permanent failures, rejects, dry runs and `since`, and the lock against overlap."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from coursegate.connectors.runner import AlreadyRunning, Runner, RunResult
from coursegate.db import Database
from coursegate.enrollments.adapters import Adapters
from coursegate.kit.clock import FrozenClock
from coursegate.kit.timefmt import format_instant
from coursegate.models import Authorization, Connector, ConnectorReject, ConnectorRun, Event
from tests.conftest import create_tenant
from tests.connectors.conftest import (
    DEFINITION,
    Sleeps,
    add_datapass_connector,
    partner_stores,
    running_run,
)
from tests.connectors.fake_partners import ENTRY_BASE, DataPassFake, Fault, datapass_entry


@pytest.fixture
async def connector(database: Database, clock: FrozenClock, fake: DataPassFake) -> str:
    await create_tenant(database, clock, "acme")
    await create_tenant(database, clock, "globex")
    await add_datapass_connector(database, clock, fake)
    return "cnous"


def runner(database: Database, clock: FrozenClock, fake: DataPassFake, sleeps: Sleeps) -> Runner:
    return Runner(
        database, clock, partner_stores(fake), Adapters.inert(), allow_private=True, sleep=sleeps
    )


async def pull(
    database: Database, clock: FrozenClock, fake: DataPassFake, **kwargs: Any
) -> tuple[RunResult, Sleeps]:
    sleeps = Sleeps()
    result = await runner(database, clock, fake, sleeps).run(
        "acme", "cnous", trigger="manual", **kwargs
    )
    return result, sleeps


async def rows(database: Database, model: Any) -> list[Any]:
    async with database.transaction() as session:
        return list((await session.scalars(select(model))).all())


async def watermark(database: Database) -> Any:
    async with database.transaction() as session:
        found = await session.get(Connector, ("acme", "cnous"))
        assert found is not None
        return found.watermark


def backlog(count: int, start: int = 1) -> list[dict[str, Any]]:
    """`count` entries of the connector's definition, one in five of another."""
    return [
        datapass_entry(n, type_=DEFINITION if n % 5 else "api_entreprise")
        for n in range(start, start + count)
    ]


async def test_first_run_takes_the_backlog_then_reruns_create_nothing(
    database: Database, clock: FrozenClock, fake: DataPassFake, connector: str
) -> None:
    fake.entries = backlog(250)
    first, _ = await pull(database, clock, fake)
    assert (first.status, first.pages, first.created, first.skipped, first.rejected) == (
        "succeeded",
        3,
        200,
        50,
        0,
    )
    newest = ENTRY_BASE + timedelta(minutes=250)
    assert first.watermark == newest
    assert await watermark(database) == newest
    assert first.summary() == (
        f"pulled cnous: pages=3 created=200 skipped=50 rejected=0"
        f" watermark={format_instant(newest)}"
    )
    stored = await rows(database, Authorization)
    assert len(stored) == 200
    assert {a.type for a in stored} == {DEFINITION}
    events = [e for e in await rows(database, Event) if e.type == "authorization.validated"]
    assert len(events) == 200
    by_external = {a.external_id: a for a in stored}
    sample = events[0].data
    assert sample["authorization_id"] == str(by_external[sample["external_id"]].id)
    assert sample["connector_id"] == "cnous"
    assert sample["organisation"] == by_external[sample["external_id"]].organisation

    again, _ = await pull(database, clock, fake)
    assert (again.created, again.rejected) == (0, 0)
    assert len(await rows(database, Authorization)) == 200
    assert await watermark(database) == newest
    runs = await rows(database, ConnectorRun)
    assert [r.status for r in runs] == ["succeeded", "succeeded"]


async def test_incremental_run_takes_new_entries_and_rejects_what_it_cannot_place(
    database: Database, clock: FrozenClock, fake: DataPassFake, connector: str
) -> None:
    fake.entries = backlog(20)
    await pull(database, clock, fake)
    before = await watermark(database)
    undated = datapass_entry(500, validated_at=None)
    garbled = {**datapass_entry(501), "last_validated_at": "yesterday"}
    nameless = {**datapass_entry(502), "public_id": None}
    fake.entries += [*backlog(10, start=21), undated, garbled, nameless]

    result, _ = await pull(database, clock, fake)
    assert (result.status, result.created, result.rejected) == ("succeeded", 8, 3)
    # The rejected entry without a public_id carried the latest date: a bad entry does
    # not hold the watermark back (it is kept among the rejects instead).
    assert result.watermark == ENTRY_BASE + timedelta(minutes=502) > before
    rejects = await rows(database, ConnectorReject)
    assert sorted((r.external_id or "", r.reason) for r in rejects) == sorted(
        [
            ("", "public_id is missing or not a string of 1 to 128 characters"),
            (undated["public_id"], "last_validated_at is missing on an incremental run"),
            (
                garbled["public_id"],
                "last_validated_at is not an RFC 3339 instant with an offset",
            ),
        ]
    )
    assert next(r.raw for r in rejects if r.external_id == undated["public_id"]) == undated
    rejected_events = [
        e.data for e in await rows(database, Event) if e.type == "connector.entry.rejected"
    ]
    assert len(rejected_events) == 3
    assert {
        "connector_id": "cnous",
        "reason": "public_id is missing or not a string of 1 to 128 characters",
    } in rejected_events


async def test_partner_failing_mid_pagination_leaves_the_watermark_and_the_rerun_completes(
    database: Database, clock: FrozenClock, fake: DataPassFake, connector: str
) -> None:
    fake.entries = backlog(250)
    fake.fail_from_offset = 100
    failed, sleeps = await pull(database, clock, fake)
    assert (failed.status, failed.error_class, failed.transient) == ("failed", "http_5xx", True)
    assert (failed.pages, failed.created) == (1, 80)
    assert len(sleeps.waits) == 4  # five tries in all
    assert await watermark(database) is None
    assert len(await rows(database, Authorization)) == 80  # the first page stayed
    [event] = [e.data for e in await rows(database, Event) if e.type == "connector.run.failed"]
    assert event == {
        "connector_id": "cnous",
        "run_id": str(failed.run_id),
        "error_class": "http_5xx",
        "message": "the partner API answered HTTP 500",
    }

    fake.fail_from_offset = None
    rerun, _ = await pull(database, clock, fake)
    assert (rerun.status, rerun.created, rerun.pages) == ("succeeded", 120, 3)
    stored = await rows(database, Authorization)
    assert len(stored) == len({a.external_id for a in stored}) == 200
    assert await watermark(database) == ENTRY_BASE + timedelta(minutes=250)


async def test_forbidden_is_permanent_and_not_retried(
    database: Database, clock: FrozenClock, fake: DataPassFake, connector: str
) -> None:
    fake.entries = backlog(5)
    fake.faults["list"].append(Fault(403))
    result, sleeps = await pull(database, clock, fake)
    assert (result.status, result.error_class, result.transient) == ("failed", "http_4xx", False)
    assert sleeps.waits == []
    assert len(fake.at("list")) == 1
    assert await rows(database, Authorization) == []


async def test_dry_run_and_since_never_move_the_watermark(
    database: Database, clock: FrozenClock, fake: DataPassFake, connector: str
) -> None:
    fake.entries = backlog(10)
    dry, _ = await pull(database, clock, fake, dry_run=True)
    assert (dry.status, dry.created, dry.watermark) == ("succeeded", 8, None)
    assert await rows(database, Authorization) == []
    assert await rows(database, Event) == []
    assert await watermark(database) is None

    since = ENTRY_BASE + timedelta(minutes=6)
    partial, _ = await pull(database, clock, fake, since=since)
    assert partial.created == 4  # entries 6, 7, 8 and 9 of the definition
    assert await watermark(database) is None
    full, _ = await pull(database, clock, fake)
    assert full.created == 4
    assert await watermark(database) == ENTRY_BASE + timedelta(minutes=10)


async def test_overlapping_runs_are_refused(
    database: Database, clock: FrozenClock, fake: DataPassFake, connector: str
) -> None:
    fake.entries = backlog(5)
    fake.faults["list"].append(Fault(503, delay=1.0))  # answered late, then retried
    slow = asyncio.create_task(pull(database, clock, fake))
    for _ in range(500):  # until the partner holds the first page's request
        if fake.at("list"):
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the first run never asked for a page")
    with pytest.raises(AlreadyRunning):
        await pull(database, clock, fake)
    first, _ = await slow
    assert first.status == "succeeded"
    runs = await rows(database, ConnectorRun)
    assert len(runs) == 1
    # Once it ended, the next run may start.
    second, _ = await pull(database, clock, fake)
    assert second.status == "succeeded"


async def test_a_run_whose_process_died_stops_holding_the_lock_after_an_hour(
    database: Database, clock: FrozenClock, fake: DataPassFake, connector: str
) -> None:
    fake.entries = backlog(5)
    async with database.transaction() as session:
        session.add(running_run(clock.now(), clock.now()))
    with pytest.raises(AlreadyRunning):
        await pull(database, clock, fake)
    clock.advance(timedelta(hours=1, seconds=1))
    result, _ = await pull(database, clock, fake)
    assert result.status == "succeeded"
    statuses = sorted((r.status, r.error_class or "") for r in await rows(database, ConnectorRun))
    assert statuses == [("failed", "abandoned"), ("succeeded", "")]


async def test_another_tenant_cannot_run_it(
    database: Database, clock: FrozenClock, fake: DataPassFake, connector: str
) -> None:
    from coursegate.kit.errors import NotFound

    with pytest.raises(NotFound):
        await runner(database, clock, fake, Sleeps()).run("globex", "cnous", trigger="manual")
    assert fake.requests == []


async def test_no_secret_or_token_in_the_logs_of_a_run(
    database: Database,
    clock: FrozenClock,
    fake: DataPassFake,
    connector: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.entries = backlog(150)
    fake.faults["list"].extend([Fault(503), Fault(429, retry_after="1")])
    await pull(database, clock, fake)
    fake.revoke_tokens()
    fake.faults["list"].append(Fault(403))
    failed, _ = await pull(database, clock, fake)
    assert failed.status == "failed"
    assert len(fake.tokens_issued) == 2
    captured = capsys.readouterr()
    stored_runs = "".join(f"{r.message}" for r in await rows(database, ConnectorRun))
    text = caplog.text + captured.out + captured.err + stored_runs
    assert "connector_run_failed" in text
    for secret in (fake.client_secret, *fake.tokens_issued):
        assert secret not in text


async def test_a_recovered_run_takes_its_own_run_over_and_a_finished_one_is_not_repeated(
    database: Database, clock: FrozenClock, fake: DataPassFake, connector: str
) -> None:
    """A scheduled run's id comes from its workflow id: when DBOS recovers the workflow
    after a crash, the new attempt continues that run rather than being locked out."""
    fake.entries = backlog(5)
    run_id = uuid.uuid4()
    async with database.transaction() as session:
        session.add(running_run(clock.now(), clock.now(), run_id=run_id))
    sleeps = Sleeps()
    result = await runner(database, clock, fake, sleeps).run(
        "acme", "cnous", trigger="schedule", run_id=run_id
    )
    assert (result.run_id, result.status, result.created) == (run_id, "succeeded", 4)
    asked = len(fake.requests)
    again = await runner(database, clock, fake, sleeps).run(
        "acme", "cnous", trigger="schedule", run_id=run_id
    )
    assert again == result
    assert len(fake.requests) == asked
    assert [r.id for r in await rows(database, ConnectorRun)] == [run_id]
