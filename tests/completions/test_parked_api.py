"""GET /v1/inbound/parked and POST /v1/inbound/parked/{id}/replay: parked reports through the
API, replayed by the code `coursegate replay parked` runs, crediting once however often."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from coursegate.db import Database
from coursegate.kit.ids import uuid7
from coursegate.models import Completion, InboundAudit, Person, PersonIdentifier
from coursegate.people.repository import PeopleRepository
from tests.completions.conftest import Setup
from tests.conftest import bearer

# A well-formed id no parked report has; fixed, so every test process collects the same ids.
UNKNOWN = "01a245b8-9d37-715e-9835-115f8da60c7d"


async def park(inbound: Setup, person: str, **overrides: Any) -> str:
    """A report for a person not known yet; the id of the parked report."""
    response = await inbound.send(inbound.payload(person_id=person, **overrides))
    assert (response.status_code, response.json()["error"]) == (422, "PERSON_NOT_FOUND")
    parked_id: str = (await inbound.audit())[0]["parked_id"]
    return parked_id


async def listed(inbound: Setup, **params: str) -> dict[str, Any]:
    response = await inbound.client.get("/v1/inbound/parked", headers=inbound.admin, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def replay(inbound: Setup, parked_id: str) -> httpx.Response:
    return await inbound.client.post(
        f"/v1/inbound/parked/{parked_id}/replay", headers=inbound.admin
    )


async def appears_unnoticed(database: Database, inbound: Setup, value: str) -> str:
    """The person named by `value` appears without waking their parked reports, as when
    they are created while a report for them is being parked: what the manual replay is
    for. Written through the repository, below the service that would replay."""
    person = Person(
        tenant_id="acme", id=uuid7(), name=None, email=None, created_at=inbound.clock.now()
    )
    identifier = PersonIdentifier(
        tenant_id="acme",
        namespace="us_co_doc_id",
        value=value,
        person_id=person.id,
        created_at=inbound.clock.now(),
    )
    async with database.transaction() as session:
        assert await PeopleRepository(session).add(person, [identifier])
    return str(person.id)


async def count(database: Database, model: Any, *where: Any) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_parked_reports_are_listed_newest_first(inbound: Setup) -> None:
    first = await park(inbound, "777", content_hours=7, course_id="c-1")
    second = await park(inbound, "888", content_hours=2.5, course_id="c-2")
    page = await listed(inbound)
    assert [p["id"] for p in page["data"]] == [second, first]
    assert page["next_cursor"] is None
    assert page["data"][1] == {
        "id": first,
        "provider_id": "edovo",
        "key_id": "k1",
        "identifier": {"namespace": "us_co_doc_id", "value": "777"},
        "course_id": "c-1",
        "content_hours": "7.00",
        "completed_at": "2026-06-10T05:19:00.000Z",
        "parked_at": "2026-06-10T12:00:00.000Z",
        "attempts": 0,
        "resolved_at": None,
        "outcome": None,
    }
    one = await listed(inbound, limit="1")
    assert [p["id"] for p in one["data"]] == [second]
    rest = await listed(inbound, limit="1", cursor=one["next_cursor"])
    assert [p["id"] for p in rest["data"]] == [first]
    assert rest["next_cursor"] is None


async def test_open_leaves_out_what_was_resolved(inbound: Setup) -> None:
    first = await park(inbound, "777")
    second = await park(inbound, "888")
    await inbound.add_person("777")  # replays its report at once
    everything = await listed(inbound)
    assert [(p["id"], p["outcome"]) for p in everything["data"]] == [
        (second, None),
        (first, "accepted"),
    ]
    assert [p["id"] for p in (await listed(inbound, open="true"))["data"]] == [second]


async def test_a_replay_credits_the_learner_once_however_often_it_is_called(
    inbound: Setup, database: Database
) -> None:
    parked_id = await park(inbound, "777", content_hours=7)
    person_id = await appears_unnoticed(database, inbound, "777")
    assert [p["outcome"] for p in (await listed(inbound))["data"]] == [None]

    first = await replay(inbound, parked_id)
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["outcome"], body["replayed"]) == ("accepted", True)
    assert body["parked"]["id"] == parked_id
    assert (body["parked"]["outcome"], body["parked"]["attempts"]) == ("accepted", 1)
    assert body["parked"]["resolved_at"] is not None
    credits = await inbound.credits(person_id)
    assert (credits["hours_total"], credits["credits_total"]) == ("7.00", 1)

    again = await replay(inbound, parked_id)
    assert again.status_code == 200, again.text
    assert (again.json()["outcome"], again.json()["replayed"]) == ("accepted", False)
    assert again.json()["parked"] == body["parked"]
    assert await inbound.credits(person_id) == credits
    assert await count(database, Completion) == 1
    replays = [a for a in await inbound.audit() if a["replay_of"] == parked_id]
    assert [a["outcome"] for a in replays] == ["replay_accepted"]


async def test_replays_at_the_same_time_credit_once(inbound: Setup, database: Database) -> None:
    parked_id = await park(inbound, "777", content_hours=7)
    person_id = await appears_unnoticed(database, inbound, "777")
    answers = await asyncio.gather(*(replay(inbound, parked_id) for _ in range(3)))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert sorted(a.json()["replayed"] for a in answers) == [False, False, True]
    assert {a.json()["outcome"] for a in answers} == {"accepted"}
    credits = await inbound.credits(person_id)
    assert (credits["hours_total"], credits["credits_total"]) == ("7.00", 1)
    assert await count(database, Completion) == 1
    assert await count(database, InboundAudit, InboundAudit.replay_of == uuid.UUID(parked_id)) == 1


async def test_a_replay_without_the_person_keeps_it_parked(inbound: Setup) -> None:
    parked_id = await park(inbound, "404")
    response = await replay(inbound, parked_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["outcome"], body["replayed"]) == ("still_parked", True)
    assert (body["parked"]["attempts"], body["parked"]["resolved_at"]) == (1, None)
    assert body["parked"]["outcome"] is None
    again = (await replay(inbound, parked_id)).json()
    assert (again["outcome"], again["replayed"], again["parked"]["attempts"]) == (
        "still_parked",
        True,
        2,
    )
    assert (await inbound.audit())[0]["outcome"] == "replay_still_parked"


async def test_a_refused_replay_is_resolved_with_its_code(
    inbound: Setup, database: Database
) -> None:
    """The same course already recorded with other hours: refused, as the CLI would."""
    parked_id = await park(inbound, "888", content_hours=9)
    await appears_unnoticed(database, inbound, "888")
    sent = await inbound.send(inbound.payload(person_id="888", content_hours=3))
    assert sent.status_code == 201, sent.text
    body = (await replay(inbound, parked_id)).json()
    assert (body["outcome"], body["replayed"]) == ("ALREADY_COMPLETED", True)
    assert body["parked"]["outcome"] == "ALREADY_COMPLETED"
    assert (await replay(inbound, parked_id)).json()["replayed"] is False


@pytest.mark.parametrize("parked_id", [UNKNOWN, "not-an-id", "1"])
async def test_an_unknown_or_malformed_id_is_404(inbound: Setup, parked_id: str) -> None:
    response = await replay(inbound, parked_id)
    assert (response.status_code, response.json()["error"]) == (404, "NOT_FOUND")


async def test_another_tenants_parked_report_is_404_and_untouched(
    inbound: Setup, database: Database, globex: str
) -> None:
    parked_id = await park(inbound, "777")
    await appears_unnoticed(database, inbound, "777")
    theirs = await inbound.client.post(
        f"/v1/inbound/parked/{parked_id}/replay", headers=bearer(globex)
    )
    assert (theirs.status_code, theirs.json()["error"]) == (404, "NOT_FOUND")
    listed_by_globex = await inbound.client.get("/v1/inbound/parked", headers=bearer(globex))
    assert listed_by_globex.json() == {"data": [], "next_cursor": None}
    [mine] = (await listed(inbound))["data"]
    assert (mine["attempts"], mine["outcome"]) == (0, None)
    assert await count(database, Completion) == 0


async def test_unauthenticated_calls_are_401(inbound: Setup) -> None:
    parked_id = await park(inbound, "777")
    for headers in ({}, bearer("cg_nope_" + "x" * 40)):
        for method, path in (
            ("GET", "/v1/inbound/parked"),
            ("POST", f"/v1/inbound/parked/{parked_id}/replay"),
        ):
            response = await inbound.client.request(method, path, headers=headers)
            assert (response.status_code, response.json()["error"]) == (401, "UNAUTHORIZED")
    [mine] = (await listed(inbound))["data"]
    assert mine["attempts"] == 0


@pytest.mark.parametrize(
    ("params", "field", "constraint"),
    [
        ({"limit": "0"}, "limit", "out_of_range"),
        ({"limit": "501"}, "limit", "out_of_range"),
        ({"cursor": "%%%"}, "cursor", "invalid"),
        ({"open": "perhaps"}, "open", "invalid_type"),
    ],
)
async def test_malformed_list_parameters_are_400(
    inbound: Setup, params: dict[str, str], field: str, constraint: str
) -> None:
    response = await inbound.client.get("/v1/inbound/parked", headers=inbound.admin, params=params)
    assert response.status_code == 400, response.text
    assert [(d["field"], d["constraint"]) for d in response.json()["details"]] == [
        (field, constraint)
    ]
