"""Completions: the list with filters, the inbound audit by outcome, and parked reports with
Replay, which credits the learner once however often it is pressed (SPEC §9)."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.kit.ids import uuid7
from coursegate.models import Person, PersonIdentifier
from coursegate.operators.service import OperatorService
from coursegate.people.repository import PeopleRepository
from tests.completions.conftest import Setup, make_setup
from tests.console.conftest import LiveConsole, check_page, sign_in
from tests.console.helpers import form_token, signed_in

UNKNOWN = "999001"


async def _with_a_parked_report(client: httpx.AsyncClient, clock: FrozenClock, key: str) -> Setup:
    setup = await make_setup(client, clock, key)
    assert (await setup.send(setup.payload())).status_code == 201
    parked = await setup.send(setup.payload(person_id=UNKNOWN, course_id="budget-2"))
    assert parked.status_code == 422, parked.text
    return setup


async def _person_appears_quietly(database: Database, clock: FrozenClock, value: str) -> str:
    """A learner with the parked report's identifier, written straight to the table (as a
    restore or a bulk load would), so nothing replays the report by itself."""
    person_id = uuid7()
    async with database.transaction() as session:
        added = await PeopleRepository(session).add(
            Person(tenant_id="acme", id=person_id, name=None, email=None, created_at=clock.now()),
            [
                PersonIdentifier(
                    tenant_id="acme",
                    namespace="us_co_doc_id",
                    value=value,
                    person_id=person_id,
                    created_at=clock.now(),
                )
            ],
        )
    assert added
    return str(person_id)


async def _parked_id(client: httpx.AsyncClient, setup: Setup) -> str:
    response = await client.get("/v1/inbound/parked", headers=setup.admin)
    assert response.status_code == 200, response.text
    (parked,) = response.json()["data"]
    return str(parked["id"])


async def test_completions_audit_and_parked_are_listed_and_filtered(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    setup = await _with_a_parked_report(client, clock, acme)
    await signed_in(client, database, clock, "acme", "viewer")
    page = await client.get("/console/completions")
    assert page.status_code == 200
    assert "Financial Literacy" in page.text
    assert "No completion is parked." not in page.text
    parked_only = await client.get("/console/completions", params={"outcome": "parked"})
    audit_section = parked_only.text.split('id="audit-h"', 1)[1].split('id="parked"', 1)[0]
    assert "<td>parked</td>" in audit_section
    assert "<td>accepted</td>" not in audit_section
    other_course = await client.get("/console/completions", params={"course_id": "nothing-here"})
    assert "No completion matches." in other_course.text
    # A viewer sees the parked report but no Replay.
    assert ">Replay</button>" not in page.text
    assert setup.person_id


async def test_replay_credits_the_learner_once_and_is_recorded(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    setup = await _with_a_parked_report(client, clock, acme)
    parked_id = await _parked_id(client, setup)
    operator = await signed_in(client, database, clock, "acme", "operator")
    page = await client.get("/console/completions")
    assert ">Replay</button>" in page.text
    still = await operator.post(f"/console/completions/parked/{parked_id}/replay")
    assert still.status_code == 200
    assert "Still parked" in still.text
    person_id = await _person_appears_quietly(database, clock, UNKNOWN)
    replayed = await operator.post(f"/console/completions/parked/{parked_id}/replay")
    assert "the completion is recorded and the learner credited" in replayed.text
    again = await operator.post(f"/console/completions/parked/{parked_id}/replay")
    assert "Resolved already (accepted)" in again.text
    credits = await setup.credits(person_id)
    assert credits["hours_total"] == "4.50"
    assert credits["credits_total"] == 0
    completions = await client.get(
        "/v1/completions", params={"person": person_id}, headers=setup.admin
    )
    assert len(completions.json()["data"]) == 1
    async with database.transaction() as session:
        actions = await OperatorService(session, clock).actions("acme")
    assert [(a.verb, a.object_id, (a.detail or {}).get("outcome")) for a in actions] == [
        ("replay", parked_id, "accepted"),
        ("replay", parked_id, "accepted"),
        ("replay", parked_id, "still_parked"),
    ]


async def test_replay_is_refused_to_viewers_without_token_and_across_tenants(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str, globex: str
) -> None:
    setup = await _with_a_parked_report(client, clock, acme)
    parked_id = await _parked_id(client, setup)
    path = f"/console/completions/parked/{parked_id}/replay"
    viewer = await signed_in(client, database, clock, "acme", "viewer")
    assert (await viewer.post(path)).status_code == 403
    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://testserver"
    ) as other:
        operator = await signed_in(other, database, clock, "acme", "operator")
        assert (await other.post(path)).status_code == 403  # no token
        assert (await operator.post("/console/completions/parked/nope/replay")).status_code == 404
    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://testserver"
    ) as third:
        stranger = await signed_in(third, database, clock, "globex", "operator")
        assert (await stranger.post(path)).status_code == 404
        assert form_token((await third.get("/console")).text) == stranger.csrf
    response = await client.get("/v1/inbound/parked", headers=setup.admin)
    assert response.json()["data"][0]["resolved_at"] is None


async def test_an_operator_replays_a_parked_completion_in_the_browser(
    live_console: LiveConsole,
    page: Page,
    client: httpx.AsyncClient,
    database: Database,
    clock: FrozenClock,
    acme: str,
) -> None:
    setup = await _with_a_parked_report(client, clock, acme)
    person_id = await _person_appears_quietly(database, clock, UNKNOWN)
    password = await live_console.operator("acme", "ops@acme.test", "operator")
    await sign_in(page, live_console.url, "acme", "ops@acme.test", password)
    await page.get_by_role("link", name="Parked completions: 1").click()
    await expect(page.get_by_role("heading", name="Parked completions")).to_be_visible()
    await check_page(page, "completions")
    await page.get_by_role("button", name="Replay").click()
    await expect(page.get_by_role("status")).to_contain_text("the learner credited")
    credits = await setup.credits(person_id)
    assert credits["hours_total"] == "4.50"
