"""Reports for unknown people are parked and replayed when the person appears."""

from __future__ import annotations

from sqlalchemy import select

from coursegate.completions.parking import ParkingService
from coursegate.db import Database
from coursegate.models import ParkedRequest
from tests.completions.conftest import Setup


async def _parked(database: Database) -> list[ParkedRequest]:
    async with database.transaction() as session:
        return list((await session.scalars(select(ParkedRequest).order_by(ParkedRequest.id))).all())


async def test_creating_the_person_replays_the_parked_report(
    inbound: Setup, database: Database
) -> None:
    parked = await inbound.send(inbound.payload(person_id="777", content_hours=7))
    assert parked.json()["error"] == "PERSON_NOT_FOUND"
    person_id = await inbound.add_person("777")
    credits = await inbound.credits(person_id)
    assert (credits["hours_total"], credits["credits_total"]) == ("7.00", 1)
    [row] = await _parked(database)
    assert (row.outcome, row.attempts) == ("accepted", 1)
    assert row.resolved_at is not None
    replay = (await inbound.audit())[0]
    assert replay["outcome"] == "replay_accepted"
    assert replay["replay_of"] == str(row.id)
    assert replay["completion_id"] is not None
    # Sending the original again now is a plain duplicate.
    again = await inbound.send(inbound.payload(person_id="777", content_hours=7))
    assert again.status_code == 200


async def test_a_conflicting_parked_report_is_audited_without_undoing_the_person(
    inbound: Setup, database: Database
) -> None:
    await inbound.send(inbound.payload(person_id="888", content_hours=3))
    await inbound.send(
        inbound.payload(person_id="888", content_hours=9)
    )  # same course, other hours
    person_id = await inbound.add_person("888")
    assert (await inbound.credits(person_id))["hours_total"] == "3.00"
    outcomes = [r.outcome for r in await _parked(database)]
    assert outcomes == ["accepted", "ALREADY_COMPLETED"]
    replays = [a["outcome"] for a in await inbound.audit() if a["replay_of"]]
    assert sorted(replays) == ["replay_accepted", "replay_already_completed"]
    person = await inbound.client.get(f"/v1/people/{person_id}", headers=inbound.admin)
    assert person.status_code == 200


async def test_another_namespace_does_not_wake_it(inbound: Setup, database: Database) -> None:
    await inbound.send(inbound.payload(person_id="555"))
    await inbound.add_person("555", namespace="student_id")
    [row] = await _parked(database)
    assert row.resolved_at is None


async def test_manual_replay_keeps_what_still_has_no_person(
    inbound: Setup, database: Database
) -> None:
    await inbound.send(inbound.payload(person_id="404"))
    async with database.transaction() as session:
        results = await ParkingService(session, inbound.clock).replay_all("acme")
    assert [r.outcome for r in results] == ["still_parked"]
    [row] = await _parked(database)
    assert (row.resolved_at, row.attempts) == (None, 1)
    assert (await inbound.audit())[0]["outcome"] == "replay_still_parked"
