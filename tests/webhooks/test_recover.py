"""Recovering failed messages, an endpoint's messages page by page, and its success rate,
through the service the API and the console share (both databases, a real receiver)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from coursegate.kit.errors import NotFound
from coursegate.webhooks.service import EndpointDisabled, WebhookService
from tests.conftest import create_tenant
from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Reply


@asynccontextmanager
async def webhooks(hooks: Hooks) -> AsyncIterator[WebhookService]:
    async with hooks.database.transaction() as session:
        yield WebhookService(session, hooks.clock, hooks.box, allow_private=True)


async def sent(hooks: Hooks, reply: Reply | None = None, type_: str = "credit.earned") -> str:
    """One event, attempted once (answered with `reply`, else 200); its id."""
    if reply is not None:
        hooks.receiver.script("/hook", reply)
    event_id = await hooks.emit(type_)
    assert await hooks.pump() == 1
    return event_id


async def test_recover_resends_once_each_message_whose_latest_attempt_since_then_failed(
    hooks: Hooks,
) -> None:
    endpoint_id, _ = await hooks.create_endpoint()
    endpoint = uuid.UUID(endpoint_id)
    before_since = await sent(hooks, Reply(500, "down"))
    hooks.clock.advance(timedelta(seconds=1))
    since = hooks.clock.now()
    # Its retry is due in 4 to 6 s: the clock stays short of that, so it has no attempt since.
    failed = await sent(hooks, Reply(503, "still down"))
    succeeded = await sent(hooks)
    fixed = await sent(hooks, Reply(500, "down"))
    already_resent = await sent(hooks, Reply(500, "down"))
    async with webhooks(hooks) as service:
        await service.resend("acme", endpoint, uuid.UUID(fixed))
    assert await hooks.pump() == 1
    async with webhooks(hooks) as service:
        await service.resend("acme", endpoint, uuid.UUID(already_resent))
    hooks.receiver.received.clear()

    async with webhooks(hooks) as service:
        assert await service.recover_failed("acme", endpoint, since) == 1
    async with webhooks(hooks) as service:
        # Recovering again queues nothing more: the message is waiting to go already.
        assert await service.recover_failed("acme", endpoint, since) == 0

    assert await hooks.pump() == 2
    assert sorted(r.msg_id for r in hooks.receiver.received) == sorted([failed, already_resent])
    resent = next(r for r in hooks.receiver.received if r.msg_id == failed)
    assert resent.verified_by == (0,)
    recovered = [d for d in await hooks.deliveries(failed) if d.origin == "resend"]
    assert [d.status for d in recovered] == ["delivered"]
    async with webhooks(hooks) as service:
        assert await service.recover_failed("acme", endpoint, since) == 0
        # From before `since`, the older failure counts too.
        earlier = since - timedelta(seconds=1)
        assert await service.recover_failed("acme", endpoint, earlier) == 1
    assert succeeded not in {r.msg_id for r in hooks.receiver.received}
    assert before_since not in {r.msg_id for r in hooks.receiver.received}


async def test_recover_refuses_a_disabled_endpoint_and_another_tenants(
    hooks: Hooks,
) -> None:
    await create_tenant(hooks.database, hooks.clock, "globex")
    endpoint_id, _ = await hooks.create_endpoint()
    await sent(hooks, Reply(500, "down"))
    since = hooks.clock.now() - timedelta(hours=1)
    async with webhooks(hooks) as service:
        with pytest.raises(NotFound):
            await service.recover_failed("globex", uuid.UUID(endpoint_id), since)
    await hooks.client.patch(
        f"/v1/webhook-endpoints/{endpoint_id}", headers=hooks.auth, json={"enabled": False}
    )
    async with webhooks(hooks) as service:
        with pytest.raises(EndpointDisabled):
            await service.recover_failed("acme", uuid.UUID(endpoint_id), since)


async def test_messages_come_newest_first_with_their_deliveries_and_attempts(
    hooks: Hooks,
) -> None:
    endpoint_id, _ = await hooks.create_endpoint()
    endpoint = uuid.UUID(endpoint_id)
    other_id, _ = await hooks.create_endpoint("/other", ["completion.recorded"])
    first = await sent(hooks, Reply(500, "down"))
    second = await sent(hooks, type_="enrollment.created")
    hooks.clock.advance(timedelta(seconds=10))
    assert await hooks.pump() == 1  # the first one's retry succeeds
    third = await sent(hooks)

    async with webhooks(hooks) as service:
        page = await service.messages("acme", endpoint, before=None, limit=2)
        rest = await service.messages("acme", endpoint, before=page[-1].head.event_id, limit=2)
        assert await service.messages("acme", uuid.UUID(other_id), before=None, limit=5) == []
        with pytest.raises(NotFound):
            await service.messages("globex", endpoint, before=None, limit=5)

    assert [str(m.head.event_id) for m in page] == [third, second]
    assert [str(m.head.event_id) for m in rest] == [first]
    (message,) = rest
    assert message.head.type == "credit.earned"
    assert message.status == "delivered"
    assert [(a.attempt, a.outcome, a.status_code) for a in message.attempts] == [
        (2, "succeeded", 200),
        (1, "failed", 500),
    ]
    assert message.attempts[1].response_body == "down"
    assert page[1].head.type == "enrollment.created"


async def test_success_rate_counts_the_attempts_of_the_last_24_hours(hooks: Hooks) -> None:
    # Attempt ids are made by the wall clock and stand for "when" in the index's range: the
    # test clock starts hours behind it, so moving it forward keeps the two in order.
    hooks.clock.advance(timedelta(hours=-3))
    endpoint_id, _ = await hooks.create_endpoint()
    quiet_id, _ = await hooks.create_endpoint("/quiet", ["completion.recorded"])
    endpoint = uuid.UUID(endpoint_id)
    await sent(hooks, Reply(500, "down"))
    hooks.clock.advance(timedelta(hours=2))
    hooks.receiver.script("/hook", Reply(500, "down"))
    await hooks.emit()
    assert await hooks.pump() == 2  # the new one, and the first one's retry: one fails
    async with webhooks(hooks) as service:
        rates = await service.attempt_counts(
            "acme", [endpoint, uuid.UUID(quiet_id)], hooks.clock.now() - timedelta(hours=24)
        )
        assert (rates[endpoint].succeeded, rates[endpoint].attempted) == (1, 3)
        assert uuid.UUID(quiet_id) not in rates
        recent = await service.attempt_counts(
            "acme", [endpoint], hooks.clock.now() - timedelta(hours=1)
        )
        assert (recent[endpoint].succeeded, recent[endpoint].attempted) == (1, 2)
