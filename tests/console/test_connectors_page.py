"""Connectors: the list with last runs, a connector's runs and rejects, Run now (a durable run
on the worker, refused while one is going) and Replay rejects (SPEC §9)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from playwright.async_api import Page, expect

from coursegate import durable
from coursegate.config import Settings
from coursegate.connectors.runner import Runner
from coursegate.db import Database
from coursegate.enrollments.adapters import Adapters
from coursegate.kit.clock import FrozenClock
from coursegate.operators.service import OperatorService
from tests.connectors import test_oneroster as oneroster_tests
from tests.connectors.conftest import (
    SECRET_ENV,
    Sleeps,
    add_datapass_connector,
    partner_stores,
    running_run,
)
from tests.connectors.fake_partners import (
    ROSTER_BASE,
    DataPassFake,
    OneRosterFake,
    datapass_entry,
    oneroster_class,
)
from tests.console.conftest import check_page, console_server, sign_in
from tests.console.helpers import signed_in


@pytest.fixture
def fake() -> Iterator[DataPassFake]:
    with DataPassFake() as partner:
        yield partner


async def _pulled_twice_with_a_reject(
    database: Database, clock: FrozenClock, fake: DataPassFake
) -> None:
    """Two runs: the second meets an undated entry, which a connector with a watermark
    cannot place and so rejects (a replay, vouched for by a person, takes it)."""
    await add_datapass_connector(database, clock, fake)
    runner = Runner(
        database, clock, partner_stores(fake), Adapters.inert(), allow_private=True, sleep=Sleeps()
    )
    fake.entries = [datapass_entry(1)]
    await runner.run("acme", "cnous", trigger="manual")
    fake.entries.append(datapass_entry(2, validated_at=None))
    result = await runner.run("acme", "cnous", trigger="manual")
    assert result.rejected == 1


async def test_connectors_runs_and_rejects_are_shown(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, fake: DataPassFake, acme: str
) -> None:
    await _pulled_twice_with_a_reject(database, clock, fake)
    await signed_in(client, database, clock, "acme", "viewer")
    listing = await client.get("/console/connectors")
    assert 'href="/console/connectors/cnous"' in listing.text
    assert "succeeded" in listing.text
    page = await client.get("/console/connectors/cnous")
    assert page.status_code == 200
    assert "Open rejects" in page.text
    assert "Show entry" in page.text
    # A viewer has neither button, and posting anyway is refused.
    assert ">Run now<" not in page.text
    assert ">Replay rejects<" not in page.text
    assert (await client.get("/console/connectors/nope")).status_code == 404


async def test_run_now_while_a_run_is_going_says_so_and_starts_nothing(
    client: httpx.AsyncClient, database: Database, clock: FrozenClock, fake: DataPassFake, acme: str
) -> None:
    await add_datapass_connector(database, clock, fake)
    async with database.transaction() as session:
        session.add(running_run(clock.now(), clock.now()))
    operator = await signed_in(client, database, clock, "acme", "operator")
    page = await client.get("/console/connectors/cnous")
    assert ">Run now<" in page.text
    # A run in progress: the runs table polls itself.
    assert 'hx-trigger="every 2s"' in page.text
    refused = await operator.post("/console/connectors/cnous/run")
    assert refused.status_code == 409
    assert "running already" in refused.text
    runs = await client.get("/console/connectors/cnous/runs")
    assert runs.text.count("<tr") == 2  # the header and the one running run
    async with database.transaction() as session:
        (action,) = await OperatorService(session, clock).actions("acme")
    assert (action.verb, action.outcome) == ("run_now", "refused")


async def test_connector_actions_are_refused_to_viewers_and_other_tenants(
    client: httpx.AsyncClient,
    database: Database,
    clock: FrozenClock,
    fake: DataPassFake,
    acme: str,
    globex: str,
) -> None:
    await _pulled_twice_with_a_reject(database, clock, fake)
    viewer = await signed_in(client, database, clock, "acme", "viewer")
    for path in ("/console/connectors/cnous/run", "/console/connectors/cnous/replay-rejects"):
        assert (await viewer.post(path)).status_code == 403
    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://testserver"
    ) as other:
        stranger = await signed_in(other, database, clock, "globex", "operator")
        assert (await other.get("/console/connectors/cnous")).status_code == 404
        for path in ("/console/connectors/cnous/run", "/console/connectors/cnous/replay-rejects"):
            assert (await stranger.post(path)).status_code == 404


@pytest.fixture
def serve_settings(
    settings: Settings, fake: DataPassFake, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """`coursegate serve` for a partner on loopback, its secret in the environment."""
    monkeypatch.setenv(SECRET_ENV, fake.client_secret)
    return settings.model_copy(update={"allow_private_webhook_targets": True})


async def test_an_operator_runs_a_connector_now_and_replays_its_rejects(
    serve_settings: Settings,
    page: Page,
    database: Database,
    clock: FrozenClock,
    fake: DataPassFake,
    acme: str,
) -> None:
    await _pulled_twice_with_a_reject(database, clock, fake)
    fake.entries.append(datapass_entry(3))
    async with database.transaction() as session:
        _, password = await OperatorService(session, clock).create(
            "acme", "eng@acme.test", "operator"
        )
    with console_server(serve_settings, database, clock, role=durable.Role.SERVE) as live:
        await sign_in(page, live.url, "acme", "eng@acme.test", password)
        await page.get_by_role("link", name="Connectors", exact=True).click()
        await check_page(page, "connectors")
        await page.get_by_role("link", name="cnous").click()
        await page.get_by_role("button", name="Run now").click()
        await expect(page.get_by_role("status")).to_contain_text("Run started")
        # The durable run finishes on the worker and the table, polling, shows it.
        runs = page.locator("#runs tbody tr")
        await expect(runs).to_have_count(3, timeout=20_000)
        await expect(runs.first).to_contain_text("succeeded", timeout=20_000)
        await check_page(page, "connector")
        # The undated entry came again in the new run: still one reject of it.
        await page.get_by_role("button", name="Replay rejects").click()
        await expect(page.get_by_role("status")).to_contain_text(
            "Replayed 1 rejects: 1 taken (1 records created)"
        )
        await expect(page.get_by_text("No open reject.")).to_be_visible()


# A OneRoster connector and its partner, as the connector tests make them.
sis = oneroster_tests.sis
connector = oneroster_tests.connector


async def test_an_operator_confirms_a_held_run_and_it_is_on_activity(
    client: httpx.AsyncClient,
    settings: Settings,
    database: Database,
    clock: FrozenClock,
    sis: OneRosterFake,
    connector: str,
    acme: str,
) -> None:
    oneroster_tests.big_class(sis)
    await oneroster_tests.pull(settings, database, clock, sis)
    sis.classes = [
        oneroster_class("class-a", status="tobedeleted", modified=ROSTER_BASE + timedelta(hours=1))
    ]
    held = await oneroster_tests.pull(settings, database, clock, sis)
    assert held.status == "held"
    path = f"/console/connectors/{connector}/runs/{held.run_id}/confirm"

    viewer = await signed_in(client, database, clock, "acme", "viewer")
    page = await client.get(f"/console/connectors/{connector}")
    assert "held: it would cancel 12 of the 12 live enrollments" in page.text
    assert ">Confirm cancellations<" not in page.text
    assert (await viewer.post(path)).status_code == 403

    async with httpx.AsyncClient(
        transport=client._transport, base_url="http://testserver"
    ) as other:
        operator = await signed_in(other, database, clock, "acme", "operator")
        page = await other.get(f"/console/connectors/{connector}")
        assert ">Confirm cancellations<" in page.text
        assert ">Discard<" in page.text
        answer = await operator.post(path)
        assert answer.status_code == 200
        assert "12 cancellations confirmed by operator@acme.test" in answer.text
        assert (await operator.post(path)).status_code == 409
    roster = await oneroster_tests.roster_of(database, "algebra")
    assert {e.status for e in roster.values()} == {"canceled"}
    async with database.transaction() as session:
        actions = await OperatorService(session, clock).actions("acme")
    assert [(a.verb, a.outcome) for a in actions] == [
        ("confirm_hold", "refused"),
        ("confirm_hold", "ok"),
    ]
