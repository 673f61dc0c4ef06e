"""Learners: search by identifier or name, a learner's hours, credits, ledger, completions and
enrollments, and the statement CSV (SPEC §9)."""

from __future__ import annotations

import csv
import io

import httpx
from playwright.async_api import Page, expect
from sqlalchemy import select

from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.models import Credit
from tests.completions.conftest import Setup, make_setup
from tests.console.conftest import LiveConsole, check_page, sign_in
from tests.console.helpers import signed_in


async def _learner_with_a_credit(client: httpx.AsyncClient, clock: FrozenClock, key: str) -> Setup:
    """Learner 123456 with 4.50 + 2.00 hours: 6.50 hours, 1 credit at 6 hours a credit."""
    setup = await make_setup(client, clock, key)
    first = await setup.send(setup.payload())
    assert first.status_code == 201, first.text
    second = await setup.send(
        setup.payload(course_id="typing-1", course_name="Typing", content_hours=2)
    )
    assert second.status_code == 201, second.text
    return setup


async def test_search_finds_by_identifier_exactly_then_by_name(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    setup = await _learner_with_a_credit(client, clock, acme)
    named = await client.post(
        "/v1/people",
        headers=setup.admin,
        json={
            "identifiers": [{"namespace": "us_co_doc_id", "value": "777"}],
            "name": "<b>Rosa</b> Parks",
        },
    )
    assert named.status_code == 201
    await signed_in(client, database, clock, "acme", "viewer")
    by_id = await client.get("/console/learners", params={"search": "123456"})
    assert by_id.status_code == 200
    assert f'href="/console/learners/{setup.person_id}"' in by_id.text
    assert "with the identifier" in by_id.text
    # A part of an identifier is not a match; a part of a name is.
    assert (
        f"/console/learners/{setup.person_id}"
        not in (await client.get("/console/learners", params={"search": "1234"})).text
    )
    by_name = await client.get("/console/learners", params={"search": "rosa"})
    assert "whose name contains" in by_name.text
    assert "&lt;b&gt;Rosa&lt;/b&gt; Parks" in by_name.text
    assert "<b>Rosa</b>" not in by_name.text
    nothing = await client.get("/console/learners", params={"search": "zz-nobody"})
    assert "No learner has the identifier" in nothing.text
    too_long = await client.get("/console/learners", params={"search": "x" * 257})
    assert too_long.status_code == 400


async def test_a_learners_page_shows_hours_credits_and_ledger(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    setup = await _learner_with_a_credit(client, clock, acme)
    await signed_in(client, database, clock, "acme", "viewer")
    page = await client.get(f"/console/learners/{setup.person_id}")
    assert page.status_code == 200
    assert '<td class="num">6.50</td><td class="num">1</td>' in page.text
    assert "Credit ledger: Colorado earned time" in page.text
    assert "Financial Literacy" in page.text
    assert "Typing" in page.text
    assert "us_co_doc_id" in page.text
    assert "123456" in page.text


async def test_the_statement_has_the_totals_and_one_row_per_credit(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str
) -> None:
    setup = await _learner_with_a_credit(client, clock, acme)
    await signed_in(client, database, clock, "acme", "viewer")
    response = await client.get(f"/console/learners/{setup.person_id}/statement.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    async with database.transaction() as session:
        (credit,) = (await session.scalars(select(Credit).where(Credit.tenant_id == "acme"))).all()
    assert rows == [
        ["program", "record", "hours", "credits", "sequence", "awarded_at", "completion_id"],
        ["co-earned-time", "total", "6.50", "1", "", "", ""],
        [
            "co-earned-time",
            "credit",
            "",
            "",
            "1",
            credit.awarded_at.isoformat(),
            str(credit.completion_id),
        ],
    ]


async def test_another_tenants_learner_is_not_found(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, acme: str, globex: str
) -> None:
    setup = await _learner_with_a_credit(client, clock, acme)
    await signed_in(client, database, clock, "globex", "admin")
    for path in (
        f"/console/learners/{setup.person_id}",
        f"/console/learners/{setup.person_id}/statement.csv",
    ):
        assert (await client.get(path)).status_code == 404
    assert (await client.get("/console/learners/not-an-id")).status_code == 404
    found = await client.get("/console/learners", params={"search": "123456"})
    assert setup.person_id not in found.text


async def test_a_case_manager_finds_a_learner_and_downloads_the_statement(
    live_console: LiveConsole, page: Page, client: httpx.AsyncClient, clock: FrozenClock, acme: str
) -> None:
    setup = await _learner_with_a_credit(client, clock, acme)
    password = await live_console.operator("acme", "case@acme.test", "viewer")
    await sign_in(page, live_console.url, "acme", "case@acme.test", password)
    await page.get_by_role("link", name="Learners", exact=True).click()
    await check_page(page, "learners")
    await page.get_by_label("Search").fill("123456")
    await page.get_by_role("button", name="Search").click()
    await page.get_by_role("link", name="unnamed learner").click()
    await expect(page).to_have_url(f"{live_console.url}/console/learners/{setup.person_id}")
    row = page.get_by_role("row", name="Colorado earned time")
    await expect(row.get_by_role("cell").nth(0)).to_have_text("6.50")
    await expect(row.get_by_role("cell").nth(1)).to_have_text("1")
    await check_page(page, "learner")
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download statement").click()
    download = await download_info.value
    path = await download.path()
    text = path.read_text()
    assert "co-earned-time,total,6.50,1" in text
