"""Signing in and out, sessions, CSRF, throttling, roles and headers, over HTTP (SPEC §9)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.operators.service import OperatorService
from tests.console.helpers import form_token, make_operator, post_login, signed_in


@pytest.fixture
async def other_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield http


async def test_sign_in_sets_a_session_cookie_scripts_cannot_read(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    password = await make_operator(database, clock, "acme", "Ann@Acme.test", "viewer")
    response = await post_login(client, "acme", "ann@acme.test", password)
    assert response.status_code == 303
    assert response.headers["location"] == "/console"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("cg_session="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/console" in cookie
    # Plain http from loopback: a Secure cookie would never come back.
    assert "Secure" not in cookie
    page = await client.get("/console")
    assert page.status_code == 200
    assert "ann@acme.test (viewer)" in page.text


async def test_the_cookie_is_secure_over_https(
    app: FastAPI, database: Database, clock: FrozenClock, acme: str
) -> None:
    password = await make_operator(database, clock, "acme", "ann@acme.test", "viewer")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver"
    ) as https:
        response = await post_login(https, "acme", "ann@acme.test", password)
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("cg_session="))
    assert "Secure" in cookie


@pytest.mark.parametrize(
    ("organisation", "email", "wrong_password"),
    [
        ("acme", "ann@acme.test", True),
        ("acme", "nobody@acme.test", False),
        ("nosuch", "ann@acme.test", False),
        ("", "", True),
    ],
    ids=["wrong-password", "unknown-email", "unknown-organisation", "empty"],
)
async def test_every_failed_sign_in_says_the_same(
    client: httpx.AsyncClient,
    database: Database,
    clock: FrozenClock,
    acme: str,
    organisation: str,
    email: str,
    wrong_password: bool,
) -> None:
    password = await make_operator(database, clock, "acme", "ann@acme.test", "admin")
    response = await post_login(
        client, organisation, email, "not-the-password" if wrong_password else password
    )
    assert response.status_code == 401
    assert "Invalid sign-in" in response.text
    assert "cg_session" not in response.cookies
    assert (await client.get("/console")).status_code == 303


async def test_a_disabled_operator_cannot_sign_in_and_its_sessions_end(
    client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    database: Database,
    clock: FrozenClock,
    acme: str,
) -> None:
    ann = await signed_in(client, database, clock, "acme", "operator")
    password = await make_operator(database, clock, "acme", "bob@acme.test", "admin")
    async with database.transaction() as session:
        await OperatorService(session, clock).disable("acme", "operator@acme.test")
    assert (await ann.client.get("/console")).status_code == 303
    async with database.transaction() as session:
        _, new_password = await OperatorService(session, clock).reset_password(
            "acme", "operator@acme.test"
        )
    response = await post_login(other_client, "acme", "operator@acme.test", new_password)
    assert response.status_code == 401
    assert (await post_login(other_client, "acme", "bob@acme.test", password)).status_code == 303


async def test_a_password_reset_ends_the_sessions_signed_in_with_the_old_one(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    ann = await signed_in(client, database, clock, "acme", "viewer")
    async with database.transaction() as session:
        await OperatorService(session, clock).reset_password("acme", "viewer@acme.test")
    assert (await ann.client.get("/console")).status_code == 303


async def test_sign_out_ends_the_session_for_good(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    ann = await signed_in(client, database, clock, "acme", "viewer")
    stolen = dict(client.cookies)
    response = await ann.post("/console/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"
    # The old cookie, replayed, opens nothing.
    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://testserver", cookies=stolen
    ) as replay:
        assert (await replay.get("/console")).status_code == 303


async def test_a_session_idle_for_eight_hours_ends(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await signed_in(client, database, clock, "acme", "viewer")
    clock.advance(timedelta(hours=7, minutes=59))
    assert (await client.get("/console")).status_code == 200
    # Being active moved the idle clock: another 7 h 59 min is still fine.
    clock.advance(timedelta(hours=7, minutes=59))
    assert (await client.get("/console")).status_code == 200
    clock.advance(timedelta(hours=8, minutes=1))
    response = await client.get("/console")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"


async def test_htmx_requests_without_a_session_are_sent_to_sign_in(
    client: httpx.AsyncClient, acme: str
) -> None:
    response = await client.get("/console/activity", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == "/console/login"


async def test_the_sign_in_form_needs_its_own_token(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    password = await make_operator(database, clock, "acme", "ann@acme.test", "admin")
    response = await client.post(
        "/console/login",
        data={"organisation": "acme", "email": "ann@acme.test", "password": password},
    )
    assert response.status_code == 403
    assert "cg_session" not in response.cookies


async def test_five_failures_for_an_account_throttle_it_for_fifteen_minutes(
    client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    database: Database,
    clock: FrozenClock,
    acme: str,
) -> None:
    password = await make_operator(database, clock, "acme", "ann@acme.test", "admin")
    for _ in range(5):
        assert (await post_login(client, "acme", "ann@acme.test", "guess")).status_code == 401
        clock.advance(timedelta(seconds=30))
    # Even the right password is refused now, from the same address, with when to come back.
    throttled = await post_login(client, "acme", "ANN@acme.test", password)
    assert throttled.status_code == 429
    assert "Too many failed sign-ins" in throttled.text
    assert "Try again after 2026-06-10 12:15 (UTC)" in throttled.text
    assert 0 < int(throttled.headers["retry-after"]) <= 15 * 60
    assert password not in throttled.text
    clock.advance(timedelta(minutes=13))
    assert (await post_login(client, "acme", "ann@acme.test", password)).status_code == 303


async def test_five_failures_from_one_address_throttle_every_account_it_tries(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    password = await make_operator(database, clock, "acme", "ann@acme.test", "admin")
    for n in range(5):
        response = await post_login(client, "acme", f"guess{n}@acme.test", "guess")
        assert response.status_code == 401
    assert (await post_login(client, "acme", "ann@acme.test", password)).status_code == 429
    clock.advance(timedelta(minutes=15, seconds=1))
    assert (await post_login(client, "acme", "ann@acme.test", password)).status_code == 303


async def test_a_successful_sign_in_forgets_the_accounts_failures(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    password = await make_operator(database, clock, "acme", "ann@acme.test", "admin")
    for _ in range(4):
        await post_login(client, "acme", "ann@acme.test", "guess")
    assert (await post_login(client, "acme", "ann@acme.test", password)).status_code == 303
    async with database.transaction() as session:
        account, _ = await OperatorService(session, clock).repo.failures_since(
            "acme", "ann@acme.test", "127.0.0.1", clock.now() - timedelta(hours=1)
        )
    assert account == []


async def test_a_state_change_without_the_csrf_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    admin = await signed_in(client, database, clock, "acme", "admin")
    for data in ({"name": "sneaky"}, {"name": "sneaky", "csrf_token": "forged"}):
        response = await client.post("/console/settings/api-keys", data=data)
        assert response.status_code == 403
        assert "security token" in response.text
    response = await client.post(
        "/console/settings/api-keys", data={"name": "sneaky"}, headers={"X-CSRF-Token": "x"}
    )
    assert response.status_code == 403
    settings = await client.get("/console/settings")
    assert "sneaky" not in settings.text
    # The same request with the session's token works, as a form field or an htmx header.
    assert (await admin.post("/console/settings/api-keys", {"name": "fine"})).status_code == 200
    response = await client.post(
        "/console/settings/api-keys", data={"name": "fine2"}, headers={"X-CSRF-Token": admin.csrf}
    )
    assert response.status_code == 200


async def test_a_viewer_sees_no_settings_and_is_refused_when_posting_anyway(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    viewer = await signed_in(client, database, clock, "acme", "viewer")
    overview = await client.get("/console")
    assert 'href="/console/settings"' not in overview.text
    assert (await client.get("/console/settings")).status_code == 403
    response = await viewer.post("/console/settings/api-keys", {"name": "mine"})
    assert response.status_code == 403
    response = await viewer.post(
        "/console/settings/operators", {"email": "me@acme.test", "role": "admin"}
    )
    assert response.status_code == 403
    async with database.transaction() as session:
        emails = [o.email for o in await OperatorService(session, clock).all("acme")]
    assert emails == ["viewer@acme.test"]


async def test_an_operator_role_is_not_an_admin(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    operator = await signed_in(client, database, clock, "acme", "operator")
    assert (await client.get("/console/settings")).status_code == 403
    assert (await operator.post("/console/settings/api-keys", {"name": "x"})).status_code == 403


async def test_every_console_answer_carries_the_security_headers(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await signed_in(client, database, clock, "acme", "admin")
    for path in ("/console/login", "/console", "/console/settings", "/console/nowhere"):
        response = await client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
    # The API keeps its own answers.
    assert "content-security-policy" not in (await client.get("/healthz")).headers


async def test_the_page_has_no_inline_script(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    await signed_in(client, database, clock, "acme", "admin")
    for path in ("/console/login", "/console", "/console/settings", "/console/activity"):
        html = (await client.get(path)).text
        scripts = html.count("<script")
        assert scripts == html.count('<script src="/console/static/'), path
        assert " on" not in html.replace(" one", "").split("<body", 1)[1].split(">")[0]


async def test_what_people_typed_is_shown_as_text(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    admin = await signed_in(client, database, clock, "acme", "admin")
    response = await admin.post("/console/settings/api-keys", {"name": "<script>alert(1)</script>"})
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text


async def test_another_tenants_object_is_not_found(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str, globex: str
) -> None:
    from coursegate.tenancy.repository import TenantRepository

    async with database.transaction() as session:
        (key,) = await TenantRepository(session).list_keys("globex", after=None, limit=5)
    admin = await signed_in(client, database, clock, "acme", "admin")
    response = await admin.post(f"/console/settings/api-keys/{key.id}/revoke")
    assert response.status_code == 404
    async with database.transaction() as session:
        (still,) = await TenantRepository(session).list_keys("globex", after=None, limit=5)
    assert still.revoked_at is None
    await make_operator(database, clock, "globex", "g@globex.test", "viewer")
    async with database.transaction() as session:
        (globex_op,) = await OperatorService(session, clock).all("globex")
    response = await admin.post(f"/console/settings/operators/{globex_op.id}/disable")
    assert response.status_code == 404


async def test_activity_lists_what_was_done_and_what_was_refused(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    admin = await signed_in(client, database, clock, "acme", "admin")
    created = await admin.post("/console/settings/api-keys", {"name": "ci"})
    assert created.status_code == 200
    missing = "0190f1a2-0000-7000-8000-000000000000"
    assert (await admin.post(f"/console/settings/api-keys/{missing}/revoke")).status_code == 404
    async with database.transaction() as session:
        actions = await OperatorService(session, clock).actions("acme")
    assert [(a.verb, a.object_type, a.outcome) for a in actions] == [
        ("revoke", "api_key", "refused"),
        ("create", "api_key", "ok"),
    ]
    assert actions[0].object_id == missing
    assert actions[0].detail == {"error": "NOT_FOUND"}
    assert actions[1].operator_email == "admin@acme.test"
    page = await client.get("/console/activity")
    assert page.text.index("refused") < page.text.index(">ok<")


async def test_admins_add_and_disable_operators_and_the_last_admin_stays(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    admin = await signed_in(client, database, clock, "acme", "admin")
    added = await admin.post(
        "/console/settings/operators", {"email": "Cy@acme.test", "role": "operator"}
    )
    assert added.status_code == 200
    assert "Password for cy@acme.test" in added.text
    twice = await admin.post(
        "/console/settings/operators", {"email": "cy@acme.test", "role": "viewer"}
    )
    assert twice.status_code == 409
    bad = await admin.post(
        "/console/settings/operators", {"email": "dee@acme.test", "role": "root"}
    )
    assert bad.status_code == 400
    async with database.transaction() as session:
        service = OperatorService(session, clock)
        admin_row = await service.find("acme", "admin@acme.test")
    refused = await admin.post(f"/console/settings/operators/{admin_row.id}/disable")
    assert refused.status_code == 409
    assert "at least one active admin" in refused.text
    token = form_token((await client.get("/console/settings")).text)
    assert token == admin.csrf


async def test_a_password_reset_while_signing_in_opens_no_session(
    database: Database, clock: FrozenClock, acme: str
) -> None:
    """The password is checked between two transactions; a reset in between wins."""
    from coursegate.operators import passwords

    password = await make_operator(database, clock, "acme", "ann@acme.test", "admin")
    async with database.transaction() as session:
        attempt = await OperatorService(session, clock).begin_sign_in(
            "acme", "ann@acme.test", "192.0.2.1"
        )
    matched = await passwords.verify(attempt.password_hash, password)
    assert matched
    async with database.transaction() as session:
        await OperatorService(session, clock).reset_password("acme", "ann@acme.test")
    async with database.transaction() as session:
        assert await OperatorService(session, clock).finish_sign_in(attempt, matched) is None
