"""The Webhooks pages (SPEC §5, §9): over HTTP for roles, CSRF, tenants, escaping and the
figures; in Chromium, end to end against a real receiver and the worker's dispatcher."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Page, expect
from sqlalchemy import insert, select

from coursegate.console.webhooks import parse_since
from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.kit.errors import ValidationFailed
from coursegate.kit.ids import uuid7
from coursegate.models import Delivery, DeliveryAttempt, WebhookEndpoint
from coursegate.operators.service import OperatorService
from coursegate.tenancy.service import TenancyService
from coursegate.webhooks.routing import Router
from tests.conftest import create_tenant
from tests.console.conftest import LiveConsole, check_page, sign_in
from tests.console.helpers import SignedIn, signed_in
from tests.webhooks import conftest as webhook_tests
from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Reply
from tests.webhooks.test_lost_send import lost_then_resent

# The webhook tests' own fixtures: a receiver on loopback (and settings that let the
# service reach it), and the helper that emits, routes and dispatches.
settings = webhook_tests.settings
receiver = webhook_tests.receiver
hooks = webhook_tests.hooks


@pytest.fixture
async def sign_in_as(app: FastAPI, database: Database, clock: FrozenClock) -> AsyncIterator[_Roles]:
    roles = _Roles(app, database, clock)
    try:
        yield roles
    finally:
        for http in roles.clients:
            await http.aclose()


class _Roles:
    """One signed-in client per role, each with its own cookies."""

    def __init__(self, app: FastAPI, database: Database, clock: FrozenClock) -> None:
        self.app, self.database, self.clock = app, database, clock
        self.clients: list[httpx.AsyncClient] = []

    async def __call__(self, role: str, tenant: str = "acme") -> SignedIn:
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )
        self.clients.append(http)
        return await signed_in(http, self.database, self.clock, tenant, role)


async def failed_message(hooks: Hooks, body: str = "down") -> tuple[str, str]:
    """An endpoint whose one message failed once (500 with `body`); (endpoint id, event id)."""
    endpoint_id, _ = await hooks.create_endpoint()
    hooks.receiver.script("/hook", Reply(500, body))
    event_id = await hooks.emit()
    assert await hooks.pump() == 1
    return endpoint_id, event_id


async def resend_count(hooks: Hooks, event_id: str) -> int:
    return sum(d.origin == "resend" for d in await hooks.deliveries(event_id))


def text_of(html: str) -> str:
    """The page's words, tags and runs of spaces gone, for what a reader sees."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# Over HTTP


async def test_each_role_sees_and_may_post_only_its_controls(
    hooks: Hooks, sign_in_as: _Roles
) -> None:
    endpoint_id, event_id = await failed_message(hooks)
    base = f"/console/webhooks/{endpoint_id}"
    operator_posts = {
        f"{base}/messages/{event_id}/resend": {},
        f"{base}/replay": {"since": "2026-06-01T00:00"},
        f"{base}/recover": {"since": "2026-06-01T00:00"},
    }
    admin_posts = {
        "/console/webhooks": {"url": hooks.receiver.url("/new"), "event_types": "*"},
        f"{base}/disable": {},
        f"{base}/enable": {},
        f"{base}/rotate-secret": {},
    }
    controls = {
        "operator": [">Resend</button>", ">Replay</button>", ">Recover failed</button>"],
        "admin": [">New endpoint</button>", ">Disable</button>", ">Rotate secret</button>"],
    }

    viewer = await sign_in_as("viewer")
    operator = await sign_in_as("operator")
    admin = await sign_in_as("admin")
    for who, allowed in ((viewer, set()), (operator, {"operator"}), (admin, {"operator", "admin"})):
        listing = await who.client.get("/console/webhooks")
        page = await who.client.get(base)
        assert listing.status_code == page.status_code == 200
        assert "/hook" in listing.text
        assert event_id in page.text
        for level, names in controls.items():
            for name in names:
                shown = name in (listing.text if "New endpoint" in name else page.text)
                assert shown == (level in allowed), (who.client, name)
        new_form = await who.client.get("/console/webhooks/new")
        assert new_form.status_code == (200 if "admin" in allowed else 403)
        if "operator" not in allowed:
            for path, data in operator_posts.items():
                assert (await who.post(path, data)).status_code == 403, path
        if "admin" not in allowed:
            for path, data in admin_posts.items():
                assert (await who.post(path, data)).status_code == 403, path

    # Nothing the refused requests asked for happened.
    assert await resend_count(hooks, event_id) == 0
    assert len(await hooks.deliveries()) == 1
    endpoint = await hooks.endpoint(endpoint_id)
    assert endpoint.enabled
    assert endpoint.previous_secret_encrypted is None
    async with hooks.database.transaction() as session:
        assert len((await session.scalars(select(WebhookEndpoint))).all()) == 1
        actions = await OperatorService(session, hooks.clock).actions("acme")
    # A role's refusal comes before any action begins: nothing to record.
    assert actions == []


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    hooks: Hooks, sign_in_as: _Roles
) -> None:
    endpoint_id, event_id = await failed_message(hooks)
    admin = await sign_in_as("admin")
    base = f"/console/webhooks/{endpoint_id}"
    posts = {
        f"{base}/messages/{event_id}/resend": {},
        f"{base}/replay": {"since": "2026-06-01T00:00"},
        f"{base}/recover": {"since": "2026-06-01T00:00"},
        "/console/webhooks": {"url": hooks.receiver.url("/new"), "event_types": "*"},
        f"{base}/disable": {},
        f"{base}/rotate-secret": {},
    }
    for path, data in posts.items():
        for token in (None, "forged"):
            sent = data if token is None else {**data, "csrf_token": token}
            response = await admin.client.post(path, data=sent)
            assert response.status_code == 403, path
            assert "security token" in response.text
    htmx = await admin.client.post(
        f"{base}/messages/{event_id}/resend", headers={"HX-Request": "true", "X-CSRF-Token": "x"}
    )
    assert htmx.status_code == 403
    assert len(await hooks.deliveries()) == 1
    endpoint = await hooks.endpoint(endpoint_id)
    assert endpoint.enabled
    assert endpoint.previous_secret_encrypted is None


async def test_another_tenants_endpoints_and_messages_are_not_found(
    hooks: Hooks, sign_in_as: _Roles
) -> None:
    endpoint_id, event_id = await failed_message(hooks)
    globex = await create_tenant(hooks.database, hooks.clock, "globex")
    theirs = await hooks.client.post(
        "/v1/webhook-endpoints",
        headers={"Authorization": f"Bearer {globex}"},
        json={"url": hooks.receiver.url("/globex"), "event_types": ["*"]},
    )
    their_endpoint = theirs.json()["id"]
    admin = await sign_in_as("admin", "globex")

    assert (await admin.client.get(f"/console/webhooks/{endpoint_id}")).status_code == 404
    listing = await admin.client.get("/console/webhooks")
    assert endpoint_id not in listing.text
    assert their_endpoint in listing.text
    base = f"/console/webhooks/{endpoint_id}"
    for path, data in {
        f"{base}/messages/{event_id}/resend": {},
        # Their own endpoint, with acme's message: not theirs either.
        f"/console/webhooks/{their_endpoint}/messages/{event_id}/resend": {},
        f"{base}/replay": {"since": "2026-06-01T00:00"},
        f"{base}/recover": {"since": "2026-06-01T00:00"},
        f"{base}/disable": {},
        f"{base}/rotate-secret": {},
        "/console/webhooks/not-an-id/disable": {},
    }.items():
        assert (await admin.post(path, data)).status_code == 404, path
    assert len(await hooks.deliveries()) == 1
    endpoint = await hooks.endpoint(endpoint_id)
    assert endpoint.enabled
    assert endpoint.previous_secret_encrypted is None


async def test_what_receivers_and_admins_wrote_is_shown_as_text(
    hooks: Hooks, sign_in_as: _Roles
) -> None:
    endpoint_id, _ = await failed_message(hooks, "<script>alert('hi')</script>")
    admin = await sign_in_as("admin")
    created = await admin.post(
        "/console/webhooks",
        {
            "url": hooks.receiver.url('/x?a=<b>"'),
            "event_types": "*",
            "description": "<img src=x onerror=alert(1)>",
        },
    )
    assert created.status_code == 200
    assert "/x?a=&lt;b&gt;&#34;" in created.text
    page = await admin.client.get(f"/console/webhooks/{endpoint_id}")
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#39;hi&#39;)&lt;/script&gt;" in page.text
    listing = await admin.client.get("/console/webhooks")
    assert "<img src=x" not in listing.text
    assert "<b>" not in listing.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in listing.text
    assert "/x?a=&lt;b&gt;&#34;" in listing.text
    for html in (page.text, listing.text, created.text):
        assert html.count("<script") == html.count('<script src="/console/static/')


async def test_an_endpoint_page_shows_its_messages_with_their_attempts_and_webhook_ids(
    hooks: Hooks, sign_in_as: _Roles
) -> None:
    endpoint_id, event_id = await failed_message(hooks, "receiver down")
    hooks.clock.advance(timedelta(seconds=10))
    assert await hooks.pump() == 1  # the retry succeeds
    viewer = await sign_in_as("viewer")
    page = text_of((await viewer.client.get(f"/console/webhooks/{endpoint_id}")).text)
    assert f"credit.earned {event_id} 2026-06-10 12:00:00 delivered" in page
    # Newest attempt first: number, when, outcome, status code, latency, error class, response.
    assert re.search(r"2 2026-06-10 12:00:10 succeeded 200 \d+ ms ok", page), page
    assert re.search(r"1 2026-06-10 12:00:00 failed 500 \d+ ms http_status receiver down", page)
    assert "Success rate (24 h) 50 % (1 of 2)" in page
    # What the receiver saw as webhook-id is what the page shows.
    assert [r.msg_id for r in hooks.receiver.received] == [event_id, event_id]


async def test_a_send_lost_with_its_worker_is_shown_as_an_attempt_of_unknown_outcome(
    hooks: Hooks, sign_in_as: _Roles
) -> None:
    endpoint_id, _, _ = await lost_then_resent(hooks)
    viewer = await sign_in_as("viewer")
    page = text_of((await viewer.client.get(f"/console/webhooks/{endpoint_id}")).text)
    assert re.search(r"2 2026-06-10 12:00:10 succeeded 200 \d+ ms ok", page), page
    assert (
        "1 2026-06-10 12:00:00 outcome unknown (worker stopped mid-send) none unknown"
        " lease_expired" in page
    ), page


async def test_messages_come_25_to_a_page_newest_first(hooks: Hooks, sign_in_as: _Roles) -> None:
    endpoint_id, _ = await hooks.create_endpoint()
    events = [await hooks.emit() for _ in range(27)]
    router = Router(hooks.database, hooks.clock)
    while await router.route_pending():
        pass
    viewer = await sign_in_as("viewer")
    first = (await viewer.client.get(f"/console/webhooks/{endpoint_id}")).text
    shown = re.findall(r'id="message-([0-9a-f-]+)"', first)
    assert shown == events[::-1][:25]
    assert "Not attempted yet." in first
    older = re.search(r'href="(/console/webhooks/[^"]+\?before=[^"]+)">Older messages', first)
    assert older is not None
    rest = (await viewer.client.get(older.group(1))).text
    assert re.findall(r'id="message-([0-9a-f-]+)"', rest) == events[1::-1]
    assert "Older messages" not in rest


async def test_the_success_rate_counts_the_attempts_of_the_last_24_hours(
    hooks: Hooks, sign_in_as: _Roles
) -> None:
    busy, _ = await hooks.create_endpoint("/busy")
    mixed, _ = await hooks.create_endpoint("/mixed")
    await hooks.create_endpoint("/quiet")
    now = hooks.clock.now()
    rows = []
    for endpoint_id, hours_ago, outcome in [
        (busy, 23.9, "succeeded"),
        (busy, 12, "succeeded"),
        (busy, 1, "succeeded"),
        (busy, 0.5, "failed"),
        (busy, 24.1, "failed"),  # older than a day: not counted
        (busy, 30, "failed"),
        (mixed, 2, "succeeded"),
        (mixed, 2, "failed"),
        (mixed, 1, "failed"),
    ]:
        at = now - timedelta(hours=hours_ago)
        rows.append(
            {
                "tenant_id": "acme",
                # Made when it was attempted, as the dispatcher's ids are.
                "id": uuid7(int(at.timestamp() * 1000)),
                "endpoint_id": uuid.UUID(endpoint_id),
                "delivery_id": uuid7(),
                "event_id": uuid7(),
                "attempt": 1,
                "attempted_at": at,
                "outcome": outcome,
                "status_code": 200 if outcome == "succeeded" else 500,
                "latency_ms": 5,
                "response_body": None,
                "error_class": None if outcome == "succeeded" else "http_status",
            }
        )
    async with hooks.database.transaction() as session:
        await session.execute(insert(DeliveryAttempt), rows)
    viewer = await sign_in_as("viewer")
    listing = text_of((await viewer.client.get("/console/webhooks")).text)
    assert re.search(r"/busy .* Enabled 75 % \(3 of 4\)", listing), listing
    assert re.search(r"/mixed .* Enabled 33.3 % \(1 of 3\)", listing), listing
    assert re.search(r"/quiet .* Enabled no attempts", listing), listing
    page = text_of((await viewer.client.get(f"/console/webhooks/{busy}")).text)
    assert "Success rate (24 h) 75 % (3 of 4)" in page


async def test_since_is_read_in_the_tenants_timezone(hooks: Hooks, sign_in_as: _Roles) -> None:
    async with hooks.database.transaction() as session:
        await TenancyService(session, hooks.clock).update_tenant(
            "acme", changes={"timezone": "America/Denver"}
        )
    endpoint_id, _ = await hooks.create_endpoint()
    t0 = hooks.clock.now()  # 12:00 UTC, 06:00 in Denver (MDT, UTC-6)
    hooks.clock.set(t0 - timedelta(hours=3))
    await hooks.emit()  # 03:00 in Denver
    hooks.clock.set(t0 - timedelta(hours=1))
    kept = await hooks.emit()  # 05:00 in Denver
    hooks.clock.set(t0)
    operator = await sign_in_as("operator")

    page = (await operator.client.get(f"/console/webhooks/{endpoint_id}")).text
    # The field starts 24 hours back, in Denver's wall time.
    assert 'value="2026-06-09T06:00"' in page
    assert "In America/Denver." in text_of(page)
    replayed = await operator.post(
        f"/console/webhooks/{endpoint_id}/replay", {"since": "2026-06-10T04:00"}
    )
    assert replayed.status_code == 200
    assert "1 message since 2026-06-10 04:00 (America/Denver) queued again." in replayed.text
    assert [str(d.event_id) for d in await hooks.deliveries() if d.origin == "replay"] == [kept]

    refused = await operator.post(
        f"/console/webhooks/{endpoint_id}/recover", {"since": "yesterday"}
    )
    assert refused.status_code == 400
    assert "Since: a date and time such as 2026-06-10T08:00, in America/Denver" in refused.text
    async with hooks.database.transaction() as session:
        actions = await OperatorService(session, hooks.clock).actions("acme")
    assert [(a.verb, a.outcome, a.detail) for a in actions] == [
        ("recover", "refused", {"error": "VALIDATION_ERROR"}),
        ("replay", "ok", {"since": "2026-06-10T10:00:00.000Z", "queued": 1}),
    ]


def test_a_datetime_local_value_becomes_the_right_instant_around_clock_changes() -> None:
    denver = ZoneInfo("America/Denver")
    # Clocks went back at 02:00 on 2026-11-01: 01:30 happened twice; the first is meant.
    assert parse_since("2026-11-01T01:30", "America/Denver").utcoffset() == timedelta(hours=-6)
    assert parse_since("2026-06-10T04:00:30", "America/Denver") == datetime(
        2026, 6, 10, 4, 0, 30, tzinfo=denver
    )
    for bad in ("", "2026-06-10T04:00Z", "2026-06-10T04:00+02:00", "10/06/2026 04:00"):
        with pytest.raises(ValidationFailed, match="Since: a date and time"):
            parse_since(bad, "America/Denver")


async def test_admins_create_endpoints_and_refusals_name_the_field(
    hooks: Hooks, sign_in_as: _Roles
) -> None:
    admin = await sign_in_as("admin")
    form = await admin.client.get("/console/webhooks/new")
    for label in ("URL", "Event types", "Description"):
        assert re.search(rf'<label for="[a-z_]+">{label}</label>', form.text), label

    for data, message in [
        ({"url": "ftp://hooks.example.com", "event_types": "*"}, "URL: the URL scheme must be"),
        ({"url": hooks.receiver.url("/a")}, "Event types: "),
        (
            {"url": hooks.receiver.url("/a"), "event_types": "nonsense.type"},
            "Event types: not an event type of the catalogue",
        ),
        (
            {"url": hooks.receiver.url("/a"), "event_types": "*", "description": "d" * 513},
            "Description: ",
        ),
    ]:
        refused = await admin.post("/console/webhooks", data)
        assert refused.status_code == 400, data
        assert message in refused.text, refused.text
    # Through htmx the refusal is a fragment, for the place beside the form.
    fragment = await admin.client.post(
        "/console/webhooks",
        data={"url": "ftp://x.example", "event_types": "*"},
        headers={"HX-Request": "true", "X-CSRF-Token": admin.csrf},
    )
    assert fragment.status_code == 400
    assert fragment.text.startswith('<p class="error" role="alert">')

    created = await admin.client.post(
        "/console/webhooks",
        data={
            "url": hooks.receiver.url("/new"),
            "event_types": ["credit.earned", "completion.recorded"],
            "description": "LMS",
            "csrf_token": admin.csrf,
        },
    )
    assert created.status_code == 200
    secret = re.search(r'aria-label="Signing secret">(whsec_[^<]+)<', created.text)
    assert secret is not None
    async with hooks.database.transaction() as session:
        (endpoint,) = (await session.scalars(select(WebhookEndpoint))).all()
        actions = await OperatorService(session, hooks.clock).actions("acme")
    assert endpoint.event_types == ["credit.earned", "completion.recorded"]
    assert endpoint.description == "LMS"
    assert hooks.box.decrypt(endpoint.secret_encrypted) == secret.group(1)
    assert (actions[0].verb, actions[0].object_id, actions[0].outcome) == (
        "create",
        str(endpoint.id),
        "ok",
    )
    assert [a.outcome for a in actions[1:]] == ["refused"] * 5
    # Shown once: the endpoint's page never shows it again.
    again = await admin.client.get(f"/console/webhooks/{endpoint.id}")
    assert secret.group(1) not in again.text
    assert "whsec_" not in again.text


async def test_disable_enable_rotate_and_resend_are_on_activity_with_their_outcome(
    hooks: Hooks, sign_in_as: _Roles
) -> None:
    endpoint_id, event_id = await failed_message(hooks)
    admin = await sign_in_as("admin")
    base = f"/console/webhooks/{endpoint_id}"
    disabled = await admin.post(f"{base}/disable")
    assert "Disabled: disabled by an operator" in disabled.text
    assert "Enable" in disabled.text
    # A disabled endpoint refuses a resend, as the API does.
    refused = await admin.client.post(
        f"{base}/messages/{event_id}/resend",
        headers={"HX-Request": "true", "X-CSRF-Token": admin.csrf},
    )
    assert refused.status_code == 409
    assert "enable the endpoint first" in refused.text
    await admin.post(f"{base}/enable")
    resent = await admin.client.post(
        f"{base}/messages/{event_id}/resend",
        headers={"HX-Request": "true", "X-CSRF-Token": admin.csrf},
    )
    assert resent.status_code == 200
    assert "Queued again, with the same webhook-id." in resent.text
    assert "<html" not in resent.text
    rotated = await admin.post(f"{base}/rotate-secret")
    secret = re.search(r'aria-label="Signing secret">(whsec_[^<]+)<', rotated.text)
    assert secret is not None
    assert hooks.box.decrypt((await hooks.endpoint(endpoint_id)).secret_encrypted) == secret.group(
        1
    )
    assert "Previous secret" in rotated.text

    activity = text_of((await admin.client.get("/console/activity")).text)
    expected = [
        f"rotate_secret webhook_endpoint {endpoint_id} ok",
        f"resend webhook_message {event_id} ok",
        f"enable webhook_endpoint {endpoint_id} ok",
        f"resend webhook_message {event_id} refused",
        f"disable webhook_endpoint {endpoint_id} ok",
    ]
    positions = [activity.index(line) for line in expected]
    assert positions == sorted(positions)
    assert await resend_count(hooks, event_id) == 1


# In the browser, against a real receiver


async def test_an_operator_resends_a_failed_message_and_the_receiver_gets_it(
    live_console: LiveConsole, page: Page, hooks: Hooks
) -> None:
    _, event_id = await failed_message(hooks, "receiver down")
    password = await live_console.operator("acme", "op@acme.test", "operator")
    await sign_in(page, live_console.url, "acme", "op@acme.test", password)
    await page.get_by_role("link", name="Webhooks", exact=True).click()
    await expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text="/hook")).to_contain_text("0 % (0 of 1)")
    await expect(page.get_by_role("button", name="New endpoint")).to_have_count(0)
    await check_page(page, "webhooks")

    await page.get_by_role("link", name=hooks.receiver.url("/hook")).click()
    message = page.locator(f"#message-{event_id}")
    await expect(message).to_contain_text("credit.earned")
    await expect(message).to_contain_text(event_id)
    await expect(
        message.locator("tr.attempts tbody tr").filter(has_text="http_status")
    ).to_contain_text("500")
    await expect(message).to_contain_text("receiver down")
    await expect(page.get_by_role("button", name="Rotate secret")).to_have_count(0)
    await check_page(page, "webhook-endpoint")

    hooks.receiver.received.clear()
    await message.get_by_role("button", name="Resend").click()
    await expect(message.get_by_role("status")).to_have_text(
        "Queued again, with the same webhook-id."
    )
    assert await hooks.pump() == 1
    (again,) = hooks.receiver.received
    assert again.msg_id == event_id
    assert again.signed_by == (0,)
    await page.reload()
    await expect(
        message.locator("tr.attempts tbody tr").filter(has_text="succeeded")
    ).to_contain_text("200")
    await check_page(page, "webhook-endpoint-resent")


async def test_recover_failed_resends_exactly_the_failed_messages(
    live_console: LiveConsole, page: Page, hooks: Hooks
) -> None:
    """The receiver was down for a while: two messages failed three times each and wait
    half an hour to retry; two others went through. Recover failed sends the two now."""
    endpoint_id, _ = await hooks.create_endpoint()
    hooks.receiver.default = Reply(503, "busy")
    failed = {await hooks.emit(), await hooks.emit()}
    assert await hooks.pump() == 2
    for pause in (timedelta(seconds=10), timedelta(minutes=7)):
        hooks.clock.advance(pause)
        assert await hooks.pump() == 2
    hooks.receiver.default = Reply(200, "ok")
    for _ in range(2):
        await hooks.emit()
    assert await hooks.pump() == 2
    hooks.receiver.received.clear()
    password = await live_console.operator("acme", "op@acme.test", "operator")
    await sign_in(page, live_console.url, "acme", "op@acme.test", password)
    await page.goto(f"{live_console.url}/console/webhooks/{endpoint_id}")

    await page.get_by_label("Since").fill("2026-06-10T11:59")
    await page.get_by_role("button", name="Recover failed").click()
    await expect(page.get_by_role("status").first).to_have_text(
        "2 messages whose latest attempt since 2026-06-10 11:59 (UTC) failed, queued again."
    )
    await check_page(page, "webhook-recovered")
    assert await hooks.pump() == 2
    assert {r.msg_id for r in hooks.receiver.received} == failed


async def test_an_admin_creates_an_endpoint_and_rotates_its_secret_seeing_each_once(
    live_console: LiveConsole, page: Page, hooks: Hooks
) -> None:
    password = await live_console.operator("acme", "admin@acme.test", "admin")
    await sign_in(page, live_console.url, "acme", "admin@acme.test", password)
    await page.goto(f"{live_console.url}/console/webhooks")
    await page.get_by_role("button", name="New endpoint").click()
    await expect(page.get_by_role("heading", name="New endpoint")).to_be_visible()
    await check_page(page, "webhook-new")

    await page.get_by_label("URL").fill("ftp://hooks.example.com")
    await page.get_by_label("Event types").select_option(["credit.earned"])
    await page.get_by_role("button", name="Create endpoint").click()
    await expect(page.get_by_role("alert")).to_contain_text("URL: the URL scheme must be")
    await expect(page.get_by_label("Event types")).to_have_values(["credit.earned"])

    await page.get_by_label("URL").fill(hooks.receiver.url("/lms"))
    await page.get_by_label("Description").fill("The LMS")
    await page.get_by_role("button", name="Create endpoint").click()
    created = page.get_by_label("Signing secret")
    await expect(created).to_contain_text("whsec_")
    first_secret = await created.inner_text()
    await expect(page).to_have_url(re.compile(r"/console/webhooks/[0-9a-f-]+$"))
    endpoint_page = page.url
    await check_page(page, "webhook-created")

    await page.goto(endpoint_page)
    await expect(page.get_by_label("Signing secret")).to_have_count(0)
    await page.get_by_role("button", name="Rotate secret").click()
    rotated = page.get_by_label("Signing secret")
    await expect(rotated).to_contain_text("whsec_")
    assert await rotated.inner_text() != first_secret
    await expect(page.get_by_text("Previous secret", exact=True)).to_be_visible()
    await check_page(page, "webhook-rotated")
    await page.goto(endpoint_page)
    await expect(page.get_by_label("Signing secret")).to_have_count(0)

    await page.get_by_role("button", name="Disable").click()
    await expect(page.get_by_text("Disabled: disabled by an operator")).to_be_visible()
    await page.get_by_role("button", name="Enable").click()
    await expect(page.get_by_role("status").first).to_contain_text("Endpoint enabled.")
    async with hooks.database.transaction() as session:
        endpoint = (await session.scalars(select(WebhookEndpoint))).one()
        deliveries = (await session.scalars(select(Delivery))).all()
    assert endpoint.enabled
    assert endpoint.description == "The LMS"
    assert deliveries == []
