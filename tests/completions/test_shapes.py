"""A plain new completion is written by one statement on PostgreSQL, anything else by the
steps in a transaction: both must leave exactly the same facts.

A request with an Idempotency-Key always takes the steps, so sending the same report for
two people, once without and once with a key, compares the two shapes on PostgreSQL (on
SQLite both take the steps, and the comparison holds all the same).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from coursegate.db import Database
from coursegate.models import Completion, Credit, CreditTotal, Event, InboundAudit
from tests.completions.conftest import Setup


async def _facts(database: Database, person_id: str) -> dict[str, Any]:
    """Everything written for one person, with the ids that differ by nature replaced by
    what they name, and checked to point where they should."""
    person = uuid.UUID(person_id)
    async with database.transaction() as session:
        completions = (
            await session.scalars(
                select(Completion).where(Completion.person_id == person).order_by(Completion.id)
            )
        ).all()
        credits = (
            await session.scalars(
                select(Credit).where(Credit.person_id == person).order_by(Credit.sequence)
            )
        ).all()
        total = (
            await session.scalars(select(CreditTotal).where(CreditTotal.person_id == person))
        ).one()
        events = [
            e
            for e in (await session.scalars(select(Event).order_by(Event.id))).all()
            if e.data.get("person", {}).get("id") == person_id
        ]
        audits = (
            await session.scalars(
                select(InboundAudit)
                .where(InboundAudit.completion_id.in_([c.id for c in completions]))
                .order_by(InboundAudit.id)
            )
        ).all()
    course_of = {c.id: c.course_id for c in completions}
    recorded_at = {c.id: c.recorded_at for c in completions}
    credit_ids = {str(c.id): f"credit-{c.sequence}" for c in credits}
    assert all(c.awarded_at == recorded_at[c.completion_id] for c in credits)

    def normalised(data: dict[str, Any]) -> dict[str, Any]:
        out = dict(data)
        out["completion_id"] = course_of[uuid.UUID(out["completion_id"])]
        assert out["person"]["id"] == person_id
        out["person"] = {
            "id": "person",
            "identifiers": [{**i, "value": "learner"} for i in out["person"]["identifiers"]],
        }
        if "credit_id" in out:
            out["credit_id"] = credit_ids[out["credit_id"]]
        return out

    for e in events:
        assert e.occurred_at == recorded_at[uuid.UUID(e.data["completion_id"])]
    return {
        "completions": [(c.course_id, c.content_hours, c.completed_at) for c in completions],
        "credits": [(c.sequence, course_of[c.completion_id]) for c in credits],
        "totals": (total.hours_total, total.credits_total),
        "events": [(e.type, normalised(e.data)) for e in events],
        "audit": [
            (
                a.outcome,
                a.status,
                a.key_id,
                a.reason,
                course_of[a.completion_id] if a.completion_id else None,
            )
            for a in audits
        ],
    }


async def test_one_statement_and_the_steps_write_the_same_facts(
    inbound: Setup, database: Database
) -> None:
    other = await inbound.add_person("654321")
    # 10 earlier hours, then 13.5 more: the second report crosses credits 2 and 3.
    for person, key in ((inbound.person_id, None), (other, str(uuid.uuid4()))):
        value = "123456" if person == inbound.person_id else "654321"
        headers = {"Idempotency-Key": key} if key else None
        first = await inbound.send(
            inbound.payload(person_id=value, course_id="warm-up", content_hours=10),
            headers={"Idempotency-Key": str(uuid.uuid4())} if key else None,
        )
        assert first.status_code == 201, first.text
        second = await inbound.send(
            inbound.payload(person_id=value, content_hours=13.5), headers=headers
        )
        assert second.status_code == 201, second.text
        body = second.json()
        assert body["hours_total"] == "23.50"
        assert body["credits_awarded"] == 2
        assert body["credits_total"] == 3

    plain = await _facts(database, inbound.person_id)
    keyed = await _facts(database, other)
    assert plain == keyed
    assert [t for t, _ in plain["events"]] == [
        "completion.recorded",
        "credit.earned",
        "completion.recorded",
        "credit.earned",
        "credit.earned",
    ]
    assert plain["events"][3][1] == {
        "completion_id": "fin-lit-101",
        "credit_id": "credit-2",
        "program_id": "co-earned-time",
        "person": {
            "id": "person",
            "identifiers": [{"namespace": "us_co_doc_id", "value": "learner"}],
        },
        "sequence": 2,
        "hours_total": "23.50",
        "credits_total": 2,
    }
    assert plain["credits"] == [(1, "warm-up"), (2, "fin-lit-101"), (3, "fin-lit-101")]
    assert plain["totals"] == (Decimal("23.50"), 3)
    assert plain["audit"] == [
        ("accepted", 201, "k1", None, "warm-up"),
        ("accepted", 201, "k1", None, "fin-lit-101"),
    ]


async def test_a_report_sent_again_without_a_key_is_a_duplicate_and_writes_nothing_more(
    inbound: Setup, database: Database
) -> None:
    payload = inbound.payload(content_hours=7)
    first = await inbound.send(payload)
    assert first.status_code == 201, first.text
    again = await inbound.send(payload)
    assert again.status_code == 200, again.text
    assert again.json() == {"status": "duplicate", "completion_id": first.json()["completion_id"]}
    conflicting = await inbound.send({**payload, "content_hours": 8})
    assert conflicting.status_code == 422, conflicting.text
    assert conflicting.json()["error"] == "ALREADY_COMPLETED"
    async with database.transaction() as session:
        events = (await session.scalars(select(Event))).all()
        credits = (await session.scalars(select(Credit))).all()
    assert sorted(e.type for e in events) == ["completion.recorded", "credit.earned"]
    assert len(credits) == 1
    assert [a["outcome"] for a in await inbound.audit()] == ["rejected", "duplicate", "accepted"]
    assert (await inbound.credits())["hours_total"] == "7.00"


async def test_a_report_crossing_more_thresholds_than_one_statement_takes(
    inbound: Setup, database: Database
) -> None:
    # 6 hours per credit: 120 hours cross 20 thresholds at once, beyond the single
    # statement's ids for 16; the steps write them.
    response = await inbound.send(inbound.payload(content_hours=120))
    assert response.status_code == 201, response.text
    assert response.json()["credits_awarded"] == 20
    async with database.transaction() as session:
        credits = (await session.scalars(select(Credit).order_by(Credit.sequence))).all()
        events = (await session.scalars(select(Event).order_by(Event.id))).all()
    assert [c.sequence for c in credits] == list(range(1, 21))
    assert [e.data.get("sequence") for e in events] == [None, *range(1, 21)]
    assert {e.data.get("credit_id") for e in events[1:]} == {str(c.id) for c in credits}
