"""POST /v1/webhook-endpoints/{id}/recover: every message whose latest attempt since then
failed, once more and once each, against a real receiver on loopback (both databases)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from coursegate.webhooks.retry import SCHEDULE
from coursegate.webhooks.service import WebhookService
from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Reply


async def recover(hooks: Hooks, endpoint_id: str, since: datetime | str) -> httpx.Response:
    at = since if isinstance(since, str) else since.isoformat()
    return await hooks.client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/recover", headers=hooks.auth, json={"since": at}
    )


async def recovered(hooks: Hooks, endpoint_id: str, since: datetime) -> int:
    response = await recover(hooks, endpoint_id, since)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"queued"}
    queued: int = body["queued"]
    return queued


async def switch(hooks: Hooks, endpoint_id: str, *, enabled: bool) -> None:
    response = await hooks.client.patch(
        f"/v1/webhook-endpoints/{endpoint_id}", headers=hooks.auth, json={"enabled": enabled}
    )
    assert response.status_code == 200, response.text


async def test_failed_messages_are_sent_once_more_and_once_only(hooks: Hooks) -> None:
    endpoint_id, _ = await hooks.create_endpoint()
    # Failed before `since`: not recovered by this call.
    hooks.receiver.default = Reply(500, "down")
    early = await hooks.emit()
    await hooks.pump()
    t_early = hooks.clock.now()
    # Disabling by hand cancels the retries, as the five-day rule or a 410 would.
    await switch(hooks, endpoint_id, enabled=False)
    await switch(hooks, endpoint_id, enabled=True)

    hooks.clock.advance(timedelta(hours=1))
    since = hooks.clock.now()
    failed = [await hooks.emit() for _ in range(3)]
    assert await hooks.pump() == 3  # each fails, at `since` itself
    await switch(hooks, endpoint_id, enabled=False)
    await switch(hooks, endpoint_id, enabled=True)

    # One of them succeeds afterwards, resent by hand: its latest attempt succeeded.
    hooks.clock.advance(timedelta(minutes=1))
    hooks.receiver.default = Reply(200)
    resent = await hooks.client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/messages/{failed[1]}/resend", headers=hooks.auth
    )
    assert resent.status_code == 202, resent.text
    assert await hooks.pump() == 1
    hooks.receiver.received.clear()

    assert await recovered(hooks, endpoint_id, since) == 2
    # Called again before those are sent: they are queued already, nothing is added.
    assert await recovered(hooks, endpoint_id, since) == 0
    assert await hooks.pump() == 2
    got = hooks.receiver.received
    assert sorted(r.msg_id for r in got) == sorted([failed[0], failed[2]])
    assert all(r.signed_by == (0,) for r in got)
    recovers = [d for d in await hooks.deliveries() if d.origin == "recover"]
    assert sorted(str(d.event_id) for d in recovers) == sorted([failed[0], failed[2]])
    assert {d.status for d in recovers} == {"delivered"}

    # Delivered now: nothing left to recover since then. From earlier, the early one.
    assert await recovered(hooks, endpoint_id, since) == 0
    assert await recovered(hooks, endpoint_id, t_early - timedelta(seconds=1)) == 1
    await hooks.pump()
    assert [r.msg_id for r in got[2:]] == [early]


async def test_a_message_whose_retries_ran_out_is_recovered(hooks: Hooks) -> None:
    hooks.receiver.default = Reply(500, "broken")
    endpoint_id, _ = await hooks.create_endpoint()
    since = hooks.clock.now()
    event_id = await hooks.emit()
    for _ in range(len(SCHEDULE) + 1):
        assert await hooks.pump() == 1
        hooks.clock.advance(timedelta(hours=13))
    (delivery,) = await hooks.deliveries()
    assert delivery.status == "failed"

    hooks.receiver.default = Reply(200)
    hooks.receiver.received.clear()
    assert await recovered(hooks, endpoint_id, since) == 1
    assert await hooks.pump() == 1
    assert [r.msg_id for r in hooks.receiver.received] == [event_id]
    assert await recovered(hooks, endpoint_id, since) == 0


async def test_a_message_waiting_for_its_retry_is_left_to_it(hooks: Hooks) -> None:
    hooks.receiver.default = Reply(500)
    endpoint_id, _ = await hooks.create_endpoint()
    since = hooks.clock.now()
    await hooks.emit()
    await hooks.pump()
    (delivery,) = await hooks.deliveries()
    assert delivery.status == "pending"
    assert await recovered(hooks, endpoint_id, since) == 0
    assert len(await hooks.deliveries()) == 1


async def test_messages_that_succeeded_or_were_never_tried_are_not_recovered(
    hooks: Hooks,
) -> None:
    endpoint_id, _ = await hooks.create_endpoint()
    since = hooks.clock.now()
    await hooks.emit()
    await hooks.pump()  # delivered
    await switch(hooks, endpoint_id, enabled=False)
    await hooks.emit()
    assert await hooks.pump() == 0  # routed to no one: the endpoint is disabled
    await switch(hooks, endpoint_id, enabled=True)
    assert await recovered(hooks, endpoint_id, since) == 0


async def test_recoveries_at_the_same_time_queue_each_message_once(hooks: Hooks) -> None:
    hooks.receiver.default = Reply(500)
    endpoint_id, _ = await hooks.create_endpoint()
    since = hooks.clock.now()
    failed = [await hooks.emit() for _ in range(3)]
    await hooks.pump()
    await switch(hooks, endpoint_id, enabled=False)
    await switch(hooks, endpoint_id, enabled=True)
    answers = await asyncio.gather(*(recover(hooks, endpoint_id, since) for _ in range(3)))
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert sorted(a.json()["queued"] for a in answers) == [0, 0, 3]
    recovers = [d for d in await hooks.deliveries() if d.origin == "recover"]
    assert sorted(str(d.event_id) for d in recovers) == sorted(failed)


@pytest.mark.postgres_only
async def test_a_second_recovery_waits_for_the_first_and_then_finds_them_queued(
    hooks: Hooks,
) -> None:
    """Two transactions, the first still open: the second waits on the endpoint's row, then
    sees the first's deliveries and queues nothing."""
    hooks.receiver.default = Reply(500)
    endpoint_id, _ = await hooks.create_endpoint()
    since = hooks.clock.now()
    for _ in range(2):
        await hooks.emit()
    await hooks.pump()
    await switch(hooks, endpoint_id, enabled=False)
    await switch(hooks, endpoint_id, enabled=True)

    def service(session: Any) -> WebhookService:
        return WebhookService(session, hooks.clock, hooks.box, allow_private=True)

    async def second() -> int:
        async with hooks.database.transaction() as session:
            return await service(session).recover("acme", uuid.UUID(endpoint_id), since)

    async with hooks.database.transaction() as session:
        assert await service(session).recover("acme", uuid.UUID(endpoint_id), since) == 2
        waiting = asyncio.ensure_future(second())
        await asyncio.sleep(0.5)
        assert not waiting.done(), "the second recovery must wait for the first to commit"
    assert await waiting == 0
    assert len([d for d in await hooks.deliveries() if d.origin == "recover"]) == 2


async def test_a_disabled_endpoint_is_refused(hooks: Hooks) -> None:
    hooks.receiver.default = Reply(500)
    endpoint_id, _ = await hooks.create_endpoint()
    since = hooks.clock.now()
    await hooks.emit()
    await hooks.pump()
    await switch(hooks, endpoint_id, enabled=False)
    response = await recover(hooks, endpoint_id, since)
    assert (response.status_code, response.json()["error"]) == (409, "ENDPOINT_DISABLED")
    assert len(await hooks.deliveries()) == 1


async def test_malformed_bodies_are_400(hooks: Hooks) -> None:
    endpoint_id, _ = await hooks.create_endpoint()
    path = f"/v1/webhook-endpoints/{endpoint_id}/recover"
    cases: list[tuple[Any, tuple[str, str]]] = [
        ({"since": "2026-01-01T00:00:00"}, ("since", "timezone_required")),
        ({"since": "last week"}, ("since", "invalid")),
        ({"since": 5}, ("since", "invalid_type")),
        ({}, ("since", "required")),
        ({"since": "2026-01-01T00:00:00Z", "until": "x"}, ("until", "unknown_field")),
    ]
    for body, detail in cases:
        response = await hooks.client.post(path, headers=hooks.auth, json=body)
        assert response.status_code == 400, (body, response.text)
        found = [(d["field"], d["constraint"]) for d in response.json()["details"]]
        assert found == [detail], body
    broken = await hooks.client.post(
        path,
        headers={**hooks.auth, "Content-Type": "application/json"},
        content=b'{"since": ',
    )
    assert (broken.status_code, broken.json()["error"]) == (400, "INVALID_JSON")


async def test_an_unknown_or_malformed_endpoint_is_404(hooks: Hooks) -> None:
    for endpoint_id in (str(uuid.uuid4()), "not-an-id"):
        response = await recover(hooks, endpoint_id, "2026-01-01T00:00:00Z")
        assert (response.status_code, response.json()["error"]) == (404, "NOT_FOUND")


async def test_a_message_waiting_long_to_retry_is_made_due_not_sent_twice(hooks: Hooks) -> None:
    """The receiver was down: the message failed three times and waits ~30 min for its next
    retry. Recovering makes that same delivery due now; no second delivery is made."""
    endpoint_id, _ = await hooks.create_endpoint()
    hooks.receiver.default = Reply(503, "down")
    since = hooks.clock.now()
    waiting = await hooks.emit()
    assert await hooks.pump() == 1
    for pause in (timedelta(seconds=10), timedelta(minutes=7)):
        hooks.clock.advance(pause)
        assert await hooks.pump() == 1
    # Another failed once, a moment ago: its retry is seconds away and happens anyway.
    soon = await hooks.emit()
    assert await hooks.pump() == 1
    (delivery,) = await hooks.deliveries(waiting)
    assert delivery.status == "pending"
    assert delivery.next_attempt_at - hooks.clock.now() > timedelta(minutes=20)

    assert await recovered(hooks, endpoint_id, since) == 1
    assert await recovered(hooks, endpoint_id, since) == 0
    hooks.receiver.default = Reply(200)
    hooks.receiver.received.clear()
    assert await hooks.pump() == 1
    assert [r.msg_id for r in hooks.receiver.received] == [waiting]
    (delivery,) = await hooks.deliveries(waiting)
    assert delivery.status == "delivered"
    assert [d.origin for d in await hooks.deliveries(soon)] == ["event"]
