"""Fan-out, Standard Webhooks signing, retries, 410, the five-day disable, resend,
replay and rotation, against a real receiver on loopback (both databases)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from coursegate.events.outbox import NewEvent, record_events
from coursegate.models import Delivery, DeliveryAttempt, Event, OutboundEmail, Tenant
from coursegate.webhooks.dispatcher import DispatchConfig
from coursegate.webhooks.retry import SCHEDULE, retry_delay
from coursegate.webhooks.routing import Router
from tests.conftest import create_tenant
from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Reply


async def test_an_event_reaches_every_subscribed_endpoint_signed_as_the_library_verifies(
    hooks: Hooks,
) -> None:
    await hooks.create_endpoint("/all", ["*"])
    await hooks.create_endpoint("/credits", ["credit.earned"])
    await hooks.create_endpoint("/other", ["completion.recorded"])
    event_id = await hooks.emit("credit.earned", {"credit_id": "c1", "sequence": 1})

    assert await hooks.pump() == 2

    got = sorted(hooks.receiver.received, key=lambda r: r.path)
    assert [r.path for r in got] == ["/all", "/credits"]
    for r in got:
        assert r.msg_id == event_id
        assert r.verified_by, "the reference library must accept the signature"
        assert r.headers["content-type"] == "application/json"
        assert r.json == {
            "type": "credit.earned",
            "timestamp": hooks.clock.now()
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "data": {"credit_id": "c1", "sequence": 1},
        }
        assert r.timestamp == int(hooks.clock.now().timestamp())
        assert r.headers["webhook-signature"].startswith("v1,")
    # Each endpoint's own secret signed its request, and only its own.
    assert {r.path: r.verified_by for r in got} == {"/all": (0,), "/credits": (1,)}
    assert [d.status for d in await hooks.deliveries()] == ["delivered", "delivered"]
    assert await hooks.pump() == 0


async def test_events_before_an_endpoint_existed_are_not_sent_to_it(hooks: Hooks) -> None:
    await hooks.emit()
    hooks.clock.advance(timedelta(seconds=1))
    await hooks.create_endpoint()
    assert await hooks.pump() == 0
    async with hooks.database.transaction() as session:
        unrouted = await session.scalar(select(Event.id).where(Event.routed_at.is_(None)))
    assert unrouted is None


async def test_a_failed_attempt_is_retried_on_schedule_with_the_same_id_and_a_fresh_timestamp(
    hooks: Hooks,
) -> None:
    hooks.receiver.script("/hook", Reply(500, "down"), Reply(503, "still down"))
    endpoint_id, _ = await hooks.create_endpoint()
    event_id = await hooks.emit()
    t0 = hooks.clock.now()

    assert await hooks.pump() == 1
    (delivery,) = await hooks.deliveries()
    assert delivery.status == "pending"
    assert delivery.attempts == 1
    wait = delivery.next_attempt_at - t0
    assert timedelta(seconds=4) <= wait <= timedelta(seconds=6)

    hooks.clock.advance(wait - timedelta(milliseconds=1))
    assert await hooks.pump() == 0, "not due before its time"
    hooks.clock.advance(timedelta(milliseconds=1))
    assert await hooks.pump() == 1
    (delivery,) = await hooks.deliveries()
    assert delivery.attempts == 2
    assert (
        timedelta(minutes=4) <= delivery.next_attempt_at - hooks.clock.now() <= timedelta(minutes=6)
    )

    hooks.clock.advance(timedelta(minutes=6))
    assert await hooks.pump() == 1
    (delivery,) = await hooks.deliveries()
    assert delivery.status == "delivered"

    got = hooks.receiver.received
    assert [r.msg_id for r in got] == [event_id] * 3
    assert got[0].timestamp < got[1].timestamp < got[2].timestamp
    assert got[0].body == got[1].body == got[2].body
    assert all(r.signed_by == (0,) for r in got)

    response = await hooks.client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/attempts", headers=hooks.auth
    )
    attempts = response.json()["data"]
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in attempts] == [
        (3, "succeeded", 200),
        (2, "failed", 503),
        (1, "failed", 500),
    ]
    assert attempts[2]["response_body"] == "down"
    assert attempts[2]["error_class"] == "http_status"


async def test_the_last_attempt_time_compares_as_an_instant(hooks: Hooks) -> None:
    """Stored as every other instant, so that it compares with one on SQLite too."""
    hooks.receiver.default = Reply(500)
    await hooks.create_endpoint()
    await hooks.emit()
    attempted_at = hooks.clock.now()
    await hooks.pump()
    async with hooks.database.transaction() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.last_attempt_at >= attempted_at)
        )
    assert found == 1


def test_jitter_stays_within_twenty_percent_of_each_step() -> None:
    rng = random.Random(1)
    for made, step in enumerate(SCHEDULE, start=1):
        waits = [retry_delay(made, rng) for _ in range(2000)]
        assert all(w is not None and step * 0.8 <= w <= step * 1.2 for w in waits)
        spread = [w / step for w in waits if w is not None]
        assert min(spread) < 0.85, "jitter actually spreads"
        assert max(spread) > 1.15, "jitter actually spreads"
    assert retry_delay(len(SCHEDULE) + 1, rng) is None


def test_retry_after_is_honoured_within_one_to_two_steps() -> None:
    rng = random.Random(1)
    step = SCHEDULE[1]  # after the second attempt: 5 min
    assert retry_delay(2, rng, timedelta(minutes=7)) == timedelta(minutes=7)
    assert retry_delay(2, rng, timedelta(seconds=1)) == step
    assert retry_delay(2, rng, timedelta(hours=3)) == 2 * step


async def test_retry_after_from_the_receiver_sets_the_next_attempt(hooks: Hooks) -> None:
    hooks.receiver.script("/hook", Reply(429, "slow down", {"Retry-After": "8"}))
    await hooks.create_endpoint()
    await hooks.emit()
    t0 = hooks.clock.now()
    await hooks.pump()
    (delivery,) = await hooks.deliveries()
    assert delivery.next_attempt_at - t0 == timedelta(seconds=8)


async def test_the_schedule_spent_leaves_the_delivery_failed(hooks: Hooks) -> None:
    hooks.receiver.default = Reply(500, "broken")
    await hooks.create_endpoint()
    await hooks.emit()
    for _ in range(len(SCHEDULE) + 1):
        assert await hooks.pump() == 1
        hooks.clock.advance(timedelta(hours=13))
    (delivery,) = await hooks.deliveries()
    assert (delivery.status, delivery.attempts) == ("failed", len(SCHEDULE) + 1)
    assert await hooks.pump() == 0
    assert len(hooks.receiver.received) == len(SCHEDULE) + 1


async def test_410_gone_disables_the_endpoint_cancels_pending_and_tells_the_tenant(
    hooks: Hooks,
) -> None:
    async with hooks.database.transaction() as session:
        tenant = await session.get(Tenant, "acme")
        assert tenant is not None
        tenant.contact_email = "ops@acme.example"
    await hooks.create_endpoint("/watcher", ["endpoint.disabled"])
    endpoint_id, _ = await hooks.create_endpoint("/gone", ["credit.earned"])
    hooks.receiver.script("/gone", Reply(500, "hiccup"), Reply(410, "gone"))
    waiting = await hooks.emit()
    await hooks.pump()  # 500: a retry waits 5 s
    gone = await hooks.emit()
    await hooks.pump()  # 410

    endpoint = await hooks.endpoint(endpoint_id)
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")
    assert [d.status for d in await hooks.deliveries(gone)] == ["failed"]
    assert [d.status for d in await hooks.deliveries(waiting)] == ["canceled"]
    hooks.clock.advance(timedelta(minutes=1))
    await hooks.emit()
    await hooks.pump()
    assert [r.path for r in hooks.receiver.received] == ["/gone", "/gone", "/watcher"]
    notice = hooks.receiver.at("/watcher")[0].json
    assert notice["type"] == "endpoint.disabled"
    assert notice["data"] == {"endpoint_id": endpoint_id, "reason": "gone"}
    async with hooks.database.transaction() as session:
        emails = (await session.scalars(select(OutboundEmail))).all()
    assert [(e.to_address, e.kind, e.status) for e in emails] == [
        ("ops@acme.example", "endpoint.disabled", "pending")
    ]
    assert endpoint_id in emails[0].body
    got = await hooks.client.get(f"/v1/webhook-endpoints/{endpoint_id}", headers=hooks.auth)
    assert got.json()["enabled"] is False


async def test_an_endpoint_failing_for_five_days_straight_is_disabled(hooks: Hooks) -> None:
    hooks.receiver.default = Reply(500, "broken")
    endpoint_id, _ = await hooks.create_endpoint("/broken", ["credit.earned"])
    started = hooks.clock.now()
    # A new message every 12 hours keeps the endpoint busy; every attempt fails.
    while hooks.clock.now() - started < timedelta(days=5):
        await hooks.emit()
        await hooks.pump()
        endpoint = await hooks.endpoint(endpoint_id)
        assert endpoint.enabled, "not before five days"
        assert endpoint.failing_since == started
        hooks.clock.advance(timedelta(hours=12))
    await hooks.emit()
    await hooks.pump()
    endpoint = await hooks.endpoint(endpoint_id)
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "failing")
    assert {d.status for d in await hooks.deliveries()} <= {"failed", "canceled"}
    async with hooks.database.transaction() as session:
        kinds = (await session.scalars(select(Event.type).order_by(Event.id))).all()
    assert kinds[-1] == "endpoint.disabled"


async def test_a_success_ends_the_failing_streak(hooks: Hooks) -> None:
    hooks.receiver.script("/hook", Reply(500), Reply(500))
    endpoint_id, _ = await hooks.create_endpoint()
    await hooks.emit()
    await hooks.pump()
    assert (await hooks.endpoint(endpoint_id)).failing_since == hooks.clock.now()
    hooks.clock.advance(timedelta(days=4))
    await hooks.emit()
    await hooks.pump()  # the old retry fails again, the new message succeeds
    endpoint = await hooks.endpoint(endpoint_id)
    assert endpoint.enabled
    assert endpoint.failing_since is None
    hooks.clock.advance(timedelta(days=2))
    await hooks.pump()
    assert (await hooks.endpoint(endpoint_id)).enabled


async def test_resend_sends_the_message_again_with_its_original_id(hooks: Hooks) -> None:
    endpoint_id, _ = await hooks.create_endpoint()
    event_id = await hooks.emit()
    await hooks.pump()
    hooks.clock.advance(timedelta(minutes=1))
    response = await hooks.client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/messages/{event_id}/resend", headers=hooks.auth
    )
    assert response.status_code == 202, response.text
    assert response.json()["event_id"] == event_id
    await hooks.pump()
    first, again = hooks.receiver.received
    assert first.msg_id == again.msg_id == event_id
    assert first.body == again.body
    assert again.timestamp == first.timestamp + 60
    assert again.verified_by == (0,)


async def test_resend_of_a_message_the_endpoint_never_had_is_404(hooks: Hooks) -> None:
    endpoint_id, _ = await hooks.create_endpoint(event_types=["completion.recorded"])
    event_id = await hooks.emit("credit.earned")
    await hooks.pump()
    for missing in (event_id, str(uuid.uuid4()), "not-a-uuid"):
        response = await hooks.client.post(
            f"/v1/webhook-endpoints/{endpoint_id}/messages/{missing}/resend", headers=hooks.auth
        )
        assert response.status_code == 404
        assert response.json()["error"] == "NOT_FOUND"


async def test_replay_sends_every_subscribed_message_since_then_with_original_ids(
    hooks: Hooks,
) -> None:
    t0 = hooks.clock.now()
    old = await hooks.emit("credit.earned")
    hooks.clock.advance(timedelta(hours=1))
    endpoint_id, _ = await hooks.create_endpoint(event_types=["credit.earned"])
    kept = [await hooks.emit("credit.earned") for _ in range(3)]
    await hooks.emit("completion.recorded")
    await hooks.pump()
    assert sorted(r.msg_id for r in hooks.receiver.received) == sorted(kept)

    hooks.receiver.received.clear()
    response = await hooks.client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/replay",
        headers=hooks.auth,
        json={"since": t0.isoformat()},
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"queued": 4}
    await hooks.pump()
    assert sorted(r.msg_id for r in hooks.receiver.received) == sorted([old, *kept])
    assert all(r.signed_by == (0,) for r in hooks.receiver.received)


async def test_rotation_signs_with_both_secrets_for_24_hours(hooks: Hooks) -> None:
    endpoint_id, old_secret = await hooks.create_endpoint()
    response = await hooks.client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret", headers=hooks.auth
    )
    assert response.status_code == 200, response.text
    new_secret = response.json()["secret"]
    assert new_secret != old_secret
    assert new_secret.startswith("whsec_")
    hooks.receiver.secrets.append(new_secret)

    await hooks.emit()
    await hooks.pump()
    during = hooks.receiver.received[-1]
    assert during.verified_by == (0, 1), "receivers on either secret accept it"
    assert len(during.headers["webhook-signature"].split(" ")) == 2

    hooks.clock.advance(timedelta(hours=24))
    await hooks.emit()
    await hooks.pump()
    after = hooks.receiver.received[-1]
    assert after.signed_by == (1,), "the old secret no longer signs after 24 h"


async def test_a_disabled_endpoint_gets_nothing_until_enabled_and_replayed(hooks: Hooks) -> None:
    endpoint_id, _ = await hooks.create_endpoint()
    t0 = hooks.clock.now()
    await hooks.emit()
    response = await hooks.client.patch(
        f"/v1/webhook-endpoints/{endpoint_id}", headers=hooks.auth, json={"enabled": False}
    )
    assert response.json()["disabled_reason"] == "manual"
    await hooks.pump()
    assert hooks.receiver.received == []
    replay = await hooks.client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/replay",
        headers=hooks.auth,
        json={"since": t0.isoformat()},
    )
    assert replay.status_code == 409
    assert replay.json()["error"] == "ENDPOINT_DISABLED"
    await hooks.client.patch(
        f"/v1/webhook-endpoints/{endpoint_id}", headers=hooks.auth, json={"enabled": True}
    )
    replay = await hooks.client.post(
        f"/v1/webhook-endpoints/{endpoint_id}/replay",
        headers=hooks.auth,
        json={"since": t0.isoformat()},
    )
    assert replay.json() == {"queued": 1}
    await hooks.pump()
    assert len(hooks.receiver.received) == 1


async def test_another_tenants_events_never_reach_this_tenants_endpoints(hooks: Hooks) -> None:
    await create_tenant(hooks.database, hooks.clock, "globex")
    await hooks.create_endpoint()
    async with hooks.database.transaction() as session:
        await record_events(session, "globex", [NewEvent("credit.earned", {})], hooks.clock.now())
    await hooks.pump()
    assert hooks.receiver.received == []


async def test_a_long_response_is_kept_cut_to_2_kib(hooks: Hooks) -> None:
    hooks.receiver.script("/hook", Reply(500, "x" * 10_000))
    endpoint_id, _ = await hooks.create_endpoint()
    await hooks.emit()
    await hooks.pump()
    response = await hooks.client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/attempts", headers=hooks.auth
    )
    assert response.json()["data"][0]["response_body"] == "x" * 2048


async def test_a_timeout_and_a_refused_connection_are_recorded_as_such(hooks: Hooks) -> None:
    hooks.config = type(hooks.config)(timeout_seconds=0.3, allow_private=True)
    hooks.receiver.script("/slow", *[Reply(200, delay=1.0)] * 3)
    slow_id, _ = await hooks.create_endpoint("/slow")
    await hooks.emit()
    await hooks.pump()
    refused = await hooks.client.post(
        "/v1/webhook-endpoints",
        headers=hooks.auth,
        json={"url": "http://127.0.0.1:9/closed", "event_types": ["*"]},
    )
    refused_id = refused.json()["id"]
    hooks.clock.advance(timedelta(seconds=1))
    await hooks.emit()
    hooks.clock.advance(timedelta(seconds=10))
    await hooks.pump()
    classes = {}
    for endpoint_id in (slow_id, refused_id):
        response = await hooks.client.get(
            f"/v1/webhook-endpoints/{endpoint_id}/attempts", headers=hooks.auth
        )
        classes[endpoint_id] = {a["error_class"] for a in response.json()["data"]}
    assert classes[slow_id] == {"timeout"}
    assert classes[refused_id] == {"connection_error"}


async def test_the_running_dispatcher_sends_each_message_once_and_writes_each_result(
    hooks: Hooks,
) -> None:
    """The pipeline of a worker process: claims while earlier attempts are in flight and
    writes results on a beat; no attempt's result may be lost between the two."""
    await hooks.create_endpoint()
    emitted = {await hooks.emit(data={"n": i}) for i in range(300)}
    router = Router(hooks.database, hooks.clock)
    while await router.route_pending():
        pass
    hooks.config = DispatchConfig(timeout_seconds=2.0, concurrency=16, batch=40, allow_private=True)
    dispatcher = hooks.dispatcher()
    dispatcher.start()
    try:
        for _ in range(400):
            if {d.status for d in await hooks.deliveries()} == {"delivered"}:
                break
            await asyncio.sleep(0.05)
    finally:
        await dispatcher.stop()
    ids = [r.msg_id for r in hooks.receiver.received]
    assert sorted(ids) == sorted(emitted), "each message exactly once"
    async with hooks.database.transaction() as session:
        attempts = (await session.scalars(select(DeliveryAttempt.delivery_id))).all()
    assert len(attempts) == len(set(attempts)) == 300


@pytest.mark.postgres_only
async def test_two_dispatchers_share_the_queue_and_send_each_message_once(hooks: Hooks) -> None:
    """Workers claim with SKIP LOCKED: running side by side, they never send a message twice."""
    await hooks.create_endpoint()
    emitted = {await hooks.emit(data={"n": i}) for i in range(400)}
    router = Router(hooks.database, hooks.clock)
    while await router.route_pending():
        pass
    hooks.config = DispatchConfig(timeout_seconds=2.0, concurrency=8, batch=16, allow_private=True)
    dispatchers = [hooks.dispatcher(), hooks.dispatcher()]
    for dispatcher in dispatchers:
        dispatcher.start()
    try:
        for _ in range(400):
            if {d.status for d in await hooks.deliveries()} == {"delivered"}:
                break
            await asyncio.sleep(0.05)
    finally:
        for dispatcher in dispatchers:
            await dispatcher.stop()
    ids = [r.msg_id for r in hooks.receiver.received]
    assert sorted(ids) == sorted(emitted), "each message exactly once"
    async with hooks.database.transaction() as session:
        attempts = (await session.scalars(select(DeliveryAttempt.delivery_id))).all()
    assert len(attempts) == len(set(attempts)) == 400
