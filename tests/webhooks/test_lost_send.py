"""A send whose worker died before writing down the answer is listed as an attempt
whose outcome is unknown, recorded by the claim that takes the delivery over."""

from __future__ import annotations

from datetime import datetime, timedelta

from coursegate.webhooks.queue import DeliveryQueue
from coursegate.webhooks.repository import WebhookRepository
from coursegate.webhooks.routing import Router
from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Reply

LEASE = timedelta(seconds=10)


async def abandoned_claim(hooks: Hooks) -> datetime:
    """Route what is pending and claim it as a worker would, then write nothing back (the
    worker died); when the claim was made."""
    router = Router(hooks.database, hooks.clock)
    while await router.route_pending():
        pass
    claimed_at = hooks.clock.now()
    async with hooks.database.transaction() as session:
        jobs = await DeliveryQueue(session).claim_due(claimed_at, claimed_at + LEASE, 100)
    assert jobs
    return claimed_at


async def lost_then_resent(hooks: Hooks) -> tuple[str, str, datetime]:
    """An endpoint whose one message was claimed by a worker that died, then sent again
    once the lease ran out; (endpoint id, event id, when the lost send began)."""
    endpoint_id, _ = await hooks.create_endpoint()
    event_id = await hooks.emit()
    claimed_at = await abandoned_claim(hooks)
    hooks.clock.advance(LEASE - timedelta(milliseconds=1))
    assert await hooks.pump() == 0, "not taken over while the lease holds"
    hooks.clock.advance(timedelta(milliseconds=1))
    assert await hooks.pump() == 1
    return endpoint_id, event_id, claimed_at


async def test_a_takeover_lists_the_lost_send_before_the_resend(hooks: Hooks) -> None:
    endpoint_id, event_id, claimed_at = await lost_then_resent(hooks)

    response = await hooks.client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/attempts",
        params={"event_id": event_id},
        headers=hooks.auth,
    )
    assert response.status_code == 200, response.text
    attempts = response.json()["data"]
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in attempts] == [
        (2, "succeeded", 200),
        (1, "outcome_unknown", None),
    ]
    lost = attempts[1]
    assert lost["latency_ms"] is None
    assert lost["response_body"] is None
    assert lost["error_class"] == "lease_expired"
    assert datetime.fromisoformat(lost["attempted_at"].replace("Z", "+00:00")) == claimed_at
    (delivery,) = await hooks.deliveries(event_id)
    assert (delivery.status, delivery.attempts, delivery.claimed_at) == ("delivered", 2, None)

    only_lost = await hooks.client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/attempts",
        params={"outcome": "outcome_unknown"},
        headers=hooks.auth,
    )
    assert [a["id"] for a in only_lost.json()["data"]] == [lost["id"]]
    unknown = await hooks.client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/attempts",
        params={"outcome": "lost"},
        headers=hooks.auth,
    )
    assert unknown.status_code == 400, unknown.text
    assert unknown.json()["error"] == "VALIDATION_ERROR", unknown.text


async def test_the_normal_path_records_only_real_attempts_and_leaves_nothing_claimed(
    hooks: Hooks,
) -> None:
    hooks.receiver.script("/hook", Reply(500, "down"))
    await hooks.create_endpoint()
    event_id = await hooks.emit()
    assert await hooks.pump() == 1
    (delivery,) = await hooks.deliveries(event_id)
    assert (delivery.status, delivery.attempts, delivery.claimed_at) == ("pending", 1, None)

    # Its retry falls due: a delivery written down is not taken for a lost one.
    hooks.clock.advance(delivery.next_attempt_at - hooks.clock.now())
    assert await hooks.pump() == 1
    (delivery,) = await hooks.deliveries(event_id)
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    async with hooks.database.transaction() as session:
        rows = await WebhookRepository(session).attempts(
            "acme", delivery.endpoint_id, event_id=None, outcome=None, before=None, limit=10
        )
    assert [a.outcome for a in rows] == ["succeeded", "failed"]


async def test_a_worker_that_overran_its_lease_does_not_overwrite_the_takeover(
    hooks: Hooks,
) -> None:
    hooks.receiver.script("/hook", Reply(500, "down"))
    await hooks.create_endpoint()
    event_id = await hooks.emit()
    router = Router(hooks.database, hooks.clock)
    while await router.route_pending():
        pass
    slow = hooks.dispatcher()
    try:
        (stale,) = await slow._claim(10)
        hooks.clock.advance(stale.lease - hooks.clock.now())
        # Another worker takes it over and delivers (its send fails with 500: retry later).
        assert await hooks.pump() == 1
        # The slow worker comes back with its own answer: written as an attempt, but
        # the delivery keeps the newer state.
        await slow._write([await slow.attempt(stale)])
    finally:
        await slow.close()
    (delivery,) = await hooks.deliveries(event_id)
    assert (delivery.status, delivery.attempts, delivery.claimed_at) == ("pending", 2, None)
