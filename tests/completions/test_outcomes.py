"""Every row of SPEC §2's outcomes table, each leaving its audit row."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import func, select

from coursegate.db import Database
from coursegate.models import Completion, Credit, Event, ParkedRequest
from tests.completions.conftest import Setup


async def _count(database: Database, model: type) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_new_completion_is_201_with_totals(inbound: Setup, database: Database) -> None:
    response = await inbound.send(inbound.payload(content_hours=4.5))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "status",
        "completion_id",
        "hours_total",
        "credits_awarded",
        "credits_total",
    }
    assert body["status"] == "accepted"
    assert uuid.UUID(body["completion_id"]).version == 7
    assert (body["hours_total"], body["credits_awarded"], body["credits_total"]) == ("4.50", 0, 0)
    assert "123456" not in response.text  # the partner's person id is never echoed
    [audit] = await inbound.audit()
    assert (audit["outcome"], audit["status"], audit["key_id"]) == ("accepted", 201, "k1")
    assert audit["completion_id"] == body["completion_id"]
    assert await _count(database, Completion) == 1


async def test_same_content_with_another_offset_is_a_duplicate(
    inbound: Setup, database: Database
) -> None:
    first = await inbound.send(inbound.payload(completed_at="2026-06-10T10:19:00+05:00"))
    again = await inbound.send(inbound.payload(completed_at="2026-06-10T05:19:00+00:00"))
    also = await inbound.send(
        inbound.payload(completed_at="2026-06-10T05:19:00Z", course_name="Renamed course")
    )
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "completion_id": first.json()["completion_id"]}
    assert also.status_code == 200
    assert (await inbound.credits())["hours_total"] == "4.50"
    assert [a["outcome"] for a in await inbound.audit()] == ["duplicate", "duplicate", "accepted"]
    assert await _count(database, Completion) == 1


async def test_same_course_with_other_content_is_already_completed(
    inbound: Setup, database: Database
) -> None:
    assert (await inbound.send(inbound.payload(content_hours=6))).status_code == 201
    response = await inbound.send(inbound.payload(content_hours=12))
    assert response.status_code == 422
    assert response.json()["error"] == "ALREADY_COMPLETED"
    credits = await inbound.credits()
    assert (credits["hours_total"], credits["credits_total"]) == ("6.00", 1)
    assert await _count(database, Credit) == 1
    latest = (await inbound.audit())[0]
    assert (latest["outcome"], latest["status"], latest["reason"]) == (
        "rejected",
        422,
        "ALREADY_COMPLETED",
    )


async def test_idempotency_key_replays_and_reuse(inbound: Setup) -> None:
    key = str(uuid.uuid4())
    first = await inbound.send(inbound.payload(), headers={"Idempotency-Key": key})
    again = await inbound.send(inbound.payload(), headers={"Idempotency-Key": key})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["completion_id"] == first.json()["completion_id"]
    other = await inbound.send(
        inbound.payload(course_id="another-course"), headers={"Idempotency-Key": key}
    )
    assert other.status_code == 422
    assert other.json()["error"] == "IDEMPOTENCY_KEY_REUSED"
    # The refused report was not recorded under any key.
    assert (await inbound.credits())["hours_total"] == "4.50"


async def test_an_idempotency_key_is_kept_thirty_days(inbound: Setup) -> None:
    from datetime import timedelta

    key = str(uuid.uuid4())
    assert (
        await inbound.send(inbound.payload(), headers={"Idempotency-Key": key})
    ).status_code == 201
    inbound.clock.advance(timedelta(days=29))
    reused = await inbound.send(inbound.payload(course_id="c2"), headers={"Idempotency-Key": key})
    assert reused.json()["error"] == "IDEMPOTENCY_KEY_REUSED"
    inbound.clock.advance(timedelta(days=2))
    fresh = await inbound.send(
        inbound.payload(course_id="c2", completed_at="2026-07-11T10:00:00Z"),
        headers={"Idempotency-Key": key},
    )
    assert fresh.status_code == 201


async def test_a_malformed_idempotency_key_is_400(inbound: Setup) -> None:
    response = await inbound.send(inbound.payload(), headers={"Idempotency-Key": "not-a-uuid"})
    assert response.status_code == 400
    assert response.json()["details"] == [
        {"field": "Idempotency-Key", "constraint": "invalid", "message": "must be a UUID"}
    ]


async def test_unknown_person_is_parked(inbound: Setup, database: Database) -> None:
    response = await inbound.send(inbound.payload(person_id="999999"))
    assert response.status_code == 422
    assert response.json()["error"] == "PERSON_NOT_FOUND"
    assert "999999" not in response.text
    [audit] = await inbound.audit()
    assert (audit["outcome"], audit["status"]) == ("parked", 422)
    assert audit["parked_id"] is not None
    async with database.transaction() as session:
        parked = (await session.scalars(select(ParkedRequest))).one()
    assert parked.resolved_at is None
    assert json.loads(parked.body)["person_id"] == "999999"
    assert await _count(database, Completion) == 0


async def test_invalid_payload_is_400_and_audited(inbound: Setup, database: Database) -> None:
    response = await inbound.send(inbound.payload(content_hours=-1))
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "content_hours"
    [audit] = await inbound.audit()
    assert audit["outcome"] == "rejected"
    assert audit["reason"] == "VALIDATION_ERROR content_hours:must_be_positive"
    assert await _count(database, Event) == 0


async def test_bad_signature_is_401_with_nothing_else(inbound: Setup) -> None:
    response = await inbound.send(inbound.payload(), secret="wrong-secret")
    assert response.status_code == 401
    assert response.json() == {"error": "UNAUTHORIZED"}
    [audit] = await inbound.audit()
    assert (audit["outcome"], audit["reason"], audit["key_id"]) == (
        "unauthorized",
        "signature_mismatch",
        "k1",
    )


async def test_unknown_tenant_and_provider_are_401_alike(inbound: Setup) -> None:
    for path in (
        "/v1/inbound/nobody/edovo/completions",
        "/v1/inbound/acme/nobody/completions",
        "/v1/inbound/NOT A SLUG/edovo/completions",
    ):
        response = await inbound.send(inbound.payload(), path=path)
        assert response.status_code == 401, path
        assert response.json() == {"error": "UNAUTHORIZED"}
    # Only the known tenant's request could be audited.
    [audit] = await inbound.audit()
    assert (audit["provider_id"], audit["reason"]) == ("nobody", "unknown_provider")


async def test_body_over_64_kib_is_413(inbound: Setup) -> None:
    body = json.dumps(inbound.payload(padding="x" * (64 * 1024))).encode()
    response = await inbound.send(body)
    assert response.status_code == 413
    assert response.json() == {"error": "PAYLOAD_TOO_LARGE"}


async def test_broken_json_is_400_invalid_json(inbound: Setup) -> None:
    for raw in (b'{"person_id": ', b"\xff\xfe", b'{"content_hours": NaN}', b""):
        response = await inbound.send(raw)
        assert response.status_code == 400, raw
        assert response.json()["error"] == "INVALID_JSON"
    not_object = await inbound.send(b"[1, 2]")
    assert not_object.status_code == 400
    assert not_object.json()["error"] == "VALIDATION_ERROR"


async def test_signature_is_checked_before_json(inbound: Setup) -> None:
    response = await inbound.send(b"{broken", secret="wrong")
    assert response.status_code == 401


async def test_events_are_written_with_the_completion(inbound: Setup, database: Database) -> None:
    response = await inbound.send(inbound.payload(content_hours=13))
    body = response.json()
    async with database.transaction() as session:
        events = (await session.scalars(select(Event).order_by(Event.id))).all()
    assert [e.type for e in events] == ["completion.recorded", "credit.earned", "credit.earned"]
    recorded = events[0].data
    assert recorded["completion_id"] == body["completion_id"]
    assert recorded["content_hours"] == "13.00"
    assert recorded["completed_at"] == "2026-06-10T05:19:00.000Z"
    assert recorded["course_id"] == "fin-lit-101"
    assert recorded["person"] == {
        "id": inbound.person_id,
        "identifiers": [{"namespace": "us_co_doc_id", "value": "123456"}],
    }
    assert [e.data["sequence"] for e in events[1:]] == [1, 2]
    assert all(e.data["hours_total"] == "13.00" for e in events[1:])
    assert all(e.data["completion_id"] == body["completion_id"] for e in events[1:])


async def test_the_audit_list_filters_and_paginates(inbound: Setup) -> None:
    for i in range(3):
        await inbound.send(inbound.payload(course_id=f"c{i}"))
    await inbound.send(inbound.payload(), secret="bad")
    assert len(await inbound.audit(outcome="accepted")) == 3
    assert len(await inbound.audit(outcome="unauthorized")) == 1
    first = await inbound.client.get(
        "/v1/inbound/audit", params={"limit": "2"}, headers=inbound.admin
    )
    page = first.json()
    assert len(page["data"]) == 2
    assert page["data"][0]["outcome"] == "unauthorized"  # newest first
    second = await inbound.client.get(
        "/v1/inbound/audit",
        params={"limit": "2", "cursor": page["next_cursor"]},
        headers=inbound.admin,
    )
    assert len(second.json()["data"]) == 2
    assert second.json()["next_cursor"] is None


async def test_reads_are_tenant_scoped(inbound: Setup, globex: str) -> None:
    from tests.conftest import bearer

    await inbound.send(inbound.payload())
    other = bearer(globex)
    assert (await inbound.client.get("/v1/completions", headers=other)).json()["data"] == []
    assert (await inbound.client.get("/v1/inbound/audit", headers=other)).json()["data"] == []
    response = await inbound.client.get(
        f"/v1/people/{inbound.person_id}/credits",
        params={"program": "co-earned-time"},
        headers=other,
    )
    assert response.status_code == 404
    assert (await inbound.client.get("/v1/completions")).status_code == 401


async def test_completions_list_filters(inbound: Setup) -> None:
    await inbound.send(inbound.payload(course_id="a"))
    await inbound.send(inbound.payload(course_id="b"))
    listed = await inbound.client.get(
        "/v1/completions",
        params={"person": inbound.person_id, "course_id": "b"},
        headers=inbound.admin,
    )
    [row] = listed.json()["data"]
    assert (row["course_id"], row["content_hours"], row["person_id"]) == (
        "b",
        "4.50",
        inbound.person_id,
    )
    bad = await inbound.client.get("/v1/completions", params={"person": "x"}, headers=inbound.admin)
    assert bad.status_code == 400
