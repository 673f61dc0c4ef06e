"""Enrollments after assignment (SPEC §3): claim, login, activity, drop, cancel, the dedup
lock, assignment refusals, listing and completion by an inbound report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.kit.timefmt import format_instant
from tests.completions.conftest import make_setup
from tests.conftest import T0, bearer, create_tenant
from tests.courses.helpers import course_body, details_of
from tests.enrollments.conftest import COURSE, Desk, Partners, Stored

NO_ACCESS = "reminder_no_access_3_days"
NO_ACTIVITY = "no_activity_7_days"
WHILE_LIVE = {NO_ACCESS, "access_period_reminder_30_days", "course_expired"}
FULL = {"available": 0, "reserved": 0, "assigned": 0, "spent": 0, "rolled_back": 0, "total": 0}


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def counts(**values: int) -> dict[str, int]:
    return {**FULL, **values}


def student(n: int) -> dict[str, str]:
    return {"student_id": f"x{n}", "email": f"x{n}@example.edu"}


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code


def data_of(stored: Stored, event_type: str) -> list[dict[str, Any]]:
    return [e.data for e in stored.events if e.type == event_type]


def seat_of(stored: Stored, enrollment: dict[str, Any]) -> Any:
    return next(s for s in stored.seats if str(s.id) == enrollment["seat_id"])


async def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def claim(desk: Desk, enrollment_id: str, user_id: str) -> dict[str, Any]:
    return await ok(await desk.act(enrollment_id, "claim", user_id=user_id))


async def login(desk: Desk, user_id: str) -> list[str]:
    body = await ok(await desk.post("/v1/sessions", {"user_id": user_id}))
    return [e["id"] for e in body["enrollments"]]


# --- claim --------------------------------------------------------------------


async def test_claim_stores_the_login_and_is_idempotent(desk: Desk) -> None:
    await desk.create_course(seats=3)
    first, second = await desk.assign(2)
    claimed = await claim(desk, first["id"], "u1")
    assert claimed["status"] == "claimed"
    assert claimed["claimed_at"] == format_instant(T0)
    person = await ok(
        await desk.client.get(f"/v1/people/{first['person_id']}", headers=desk.headers)
    )
    assert {"namespace": "user_id", "value": "u1"} in person["identifiers"]

    again = await claim(desk, first["id"], "u1")
    assert again == claimed
    refused(await desk.act(first["id"], "claim", user_id="u2"), 409, "INVALID_TRANSITION")
    refused(await desk.act(second["id"], "claim", user_id="u1"), 409, "ALREADY_EXISTS")
    assert (await desk.get(second["id"]))["status"] == "assigned"

    stored = await desk.stored()
    claims = data_of(stored, "enrollment.claimed")
    assert len(claims) == 1
    assert claims[0]["enrollment_id"] == first["id"]
    assert claims[0]["status"] == "claimed"
    assert claims[0]["person"]["id"] == first["person_id"]


async def test_claim_of_an_active_enrollment_is_refused(desk: Desk, clock: FrozenClock) -> None:
    await desk.create_course(seats=1)
    (made,) = await desk.assign(1)
    await claim(desk, made["id"], "u1")
    clock.set(at(2026, 7, 2))
    assert await login(desk, "u1") == [made["id"]]
    refused(await desk.act(made["id"], "claim", user_id="u1"), 409, "INVALID_TRANSITION")


# --- sessions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "opens"),
    [
        (at(2026, 6, 30, 23, 59), False),
        (at(2026, 7, 1, 0, 0), True),
        (at(2026, 9, 29, 23, 59), True),
        (at(2026, 9, 30, 0, 0), False),
    ],
    ids=["before-start", "start-date", "day-before-end", "end-date"],
)
async def test_session_activates_claimed_enrollments_in_the_window(
    desk: Desk, partners: Partners, clock: FrozenClock, now: datetime, opens: bool
) -> None:
    await desk.create_course(seats=2)
    made, unclaimed = await desk.assign(2)
    await claim(desk, made["id"], "u1")
    clock.set(now)
    activated = await login(desk, "u1")
    stored = await desk.stored()
    if opens:
        assert activated == [made["id"]]
        fetched = await desk.get(made["id"])
        assert fetched["status"] == "active"
        assert fetched["activated_at"] == format_instant(now)
        assert made["person_id"] in partners.members()
        assert len(stored.events) == 4  # two for the assignment, one claim, one activation
    else:
        assert activated == []
        assert (await desk.get(made["id"]))["status"] == "claimed"
        assert len(stored.events) == 3
    assert (await desk.get(unclaimed["id"]))["status"] == "assigned"


# The catalogue names transitions: an enrollment made `active` is `enrollment.activated`,
# one made `assigned` is `enrollment.created` (SPEC §5).


async def test_activation_writes_enrollment_activated(desk: Desk, clock: FrozenClock) -> None:
    await desk.create_course(seats=1)
    (made,) = await desk.assign(1)
    await claim(desk, made["id"], "u1")
    clock.set(at(2026, 7, 1))
    assert await login(desk, "u1") == [made["id"]]
    stored = await desk.stored()
    assert stored.event_types()[-1] == "enrollment.activated"
    events = data_of(stored, "enrollment.activated")
    assert [(e["enrollment_id"], e["status"]) for e in events] == [(made["id"], "active")]


async def test_assignment_writes_enrollment_created(desk: Desk) -> None:
    await desk.create_course(seats=1)
    (made,) = await desk.assign(1)
    stored = await desk.stored()
    assert stored.event_types() == ["enrollment.created"]
    events = data_of(stored, "enrollment.created")
    assert [e["enrollment_id"] for e in events] == [made["id"]]


async def test_session_window_is_in_the_tenant_timezone(
    client: httpx.AsyncClient,
    desk: Desk,
    database: Database,
    clock: FrozenClock,
    partners: Partners,
) -> None:
    kiwi = Desk(
        client, await create_tenant(database, clock, "kiwi", timezone="Pacific/Auckland"), database
    )
    for d in (desk, kiwi):
        await d.create_course(seats=1)
        (made,) = await d.assign(1)
        await claim(d, made["id"], "u1")
    # 13:00 UTC on June 30 is 01:00 on July 1 in Auckland (UTC+12).
    clock.set(at(2026, 6, 30, 13, 0))
    assert await login(desk, "u1") == []
    (activated,) = await login(kiwi, "u1")
    assert (await kiwi.get(activated))["status"] == "active"
    assert partners.members("kiwi") == {(await kiwi.get(activated))["person_id"]}


async def test_session_of_an_unknown_user_is_404(desk: Desk) -> None:
    await desk.create_course(seats=1)
    await desk.assign(1)
    refused(await desk.post("/v1/sessions", {"user_id": "nobody"}), 404, "NOT_FOUND")


# --- activity -----------------------------------------------------------------


async def test_activity_moves_the_reminders(desk: Desk, clock: FrozenClock) -> None:
    await desk.create_course(seats=1)
    (made,) = await desk.assign(1)
    assert set((await desk.stored()).scheduled_of(made["id"])) == WHILE_LIVE

    first = await ok(await desk.act(made["id"], "activity", kind="access"))
    assert first["first_access_at"] == first["last_activity_at"] == format_instant(T0)
    scheduled = (await desk.stored()).scheduled_of(made["id"])
    assert NO_ACCESS not in scheduled
    assert scheduled[NO_ACTIVITY] == T0 + timedelta(days=7)

    clock.advance(timedelta(days=2))
    later = await ok(
        await desk.act(
            made["id"], "activity", kind="progress", at=format_instant(T0 + timedelta(days=1))
        )
    )
    assert later["first_access_at"] == format_instant(T0)
    assert later["last_activity_at"] == format_instant(T0 + timedelta(days=1))
    assert (await desk.stored()).scheduled_of(made["id"])[NO_ACTIVITY] == T0 + timedelta(days=8)

    future = clock.now() + timedelta(days=5)
    clamped = await ok(
        await desk.act(made["id"], "activity", kind="access", at=format_instant(future))
    )
    assert clamped["last_activity_at"] == format_instant(clock.now())
    scheduled = (await desk.stored()).scheduled_of(made["id"])
    assert scheduled[NO_ACTIVITY] == clock.now() + timedelta(days=7)
    assert set(scheduled) == WHILE_LIVE - {NO_ACCESS} | {NO_ACTIVITY}


async def test_activity_refusals(desk: Desk) -> None:
    await desk.create_course(seats=1)
    (made,) = await desk.assign(1)
    assert details_of(await desk.act(made["id"], "activity", kind="login"))[0][0] == "kind"
    await ok(await desk.act(made["id"], "drop"))
    refused(await desk.act(made["id"], "activity", kind="access"), 409, "ENROLLMENT_NOT_LIVE")


# --- drop ---------------------------------------------------------------------


async def test_drop_before_last_drop_date_recovers_the_seat_once(
    desk: Desk, partners: Partners
) -> None:
    await desk.create_course(seats=1)
    (first,) = await desk.assign(1)
    assert partners.balances()[first["id"]] > 0

    dropped = await ok(await desk.act(first["id"], "drop"))
    assert dropped["seat_recovered"] is True
    assert dropped["reason"] == "before_last_drop_date"
    assert dropped["enrollment"]["status"] == "dropped"
    assert dropped["enrollment"]["reason"] == "before_last_drop_date"
    assert dropped["enrollment"]["ended_at"] == format_instant(T0)
    assert await desk.seats() == counts(available=1, total=1)
    stored = await desk.stored()
    seat = seat_of(stored, first)
    assert (seat.status, seat.previously_dropped) == ("available", True)
    assert stored.scheduled_of(first["id"]) == {}
    assert first["person_id"] not in partners.members()
    assert partners.balances()[first["id"]] == 0
    (event,) = data_of(stored, "enrollment.dropped")
    assert event["enrollment_id"] == first["id"]
    assert event["seat_recovered"] is True
    assert event["reason"] == "before_last_drop_date"

    (second,) = await desk.assign(1)
    assert second["seat_id"] == first["seat_id"]
    again = await ok(await desk.act(second["id"], "drop"))
    assert (again["seat_recovered"], again["reason"]) == (False, "seat_previously_dropped")
    assert await desk.seats() == counts(spent=1, total=1)
    events = data_of(await desk.stored(), "enrollment.dropped")
    assert events[-1]["seat_recovered"] is False

    refused(await desk.act(second["id"], "drop"), 409, "ENROLLMENT_NOT_LIVE")


async def test_drop_on_or_after_last_drop_date_spends_the_seat(
    desk: Desk, partners: Partners, clock: FrozenClock
) -> None:
    await desk.create_course(seats=2)
    (made,) = await desk.assign(1)
    await claim(desk, made["id"], "u1")
    clock.set(at(2026, 7, 15, 0, 0))
    assert await login(desk, "u1") == [made["id"]]
    dropped = await ok(await desk.act(made["id"], "drop"))
    assert (dropped["seat_recovered"], dropped["reason"]) == (False, "after_last_drop_date")
    assert await desk.seats() == counts(available=1, spent=1, total=2)
    stored = await desk.stored()
    assert seat_of(stored, made).previously_dropped is False
    assert stored.scheduled_of(made["id"]) == {}
    assert partners.members() == set()
    assert partners.balances()[made["id"]] == 0
    (event,) = data_of(stored, "enrollment.dropped")
    assert event["seat_recovered"] is False
    assert event["status"] == "dropped"


async def test_last_drop_date_is_in_the_tenant_timezone(
    client: httpx.AsyncClient, desk: Desk, database: Database, clock: FrozenClock
) -> None:
    key = await create_tenant(database, clock, "kiwi", timezone="Pacific/Auckland")
    kiwi = Desk(client, key, database)
    made: dict[str, str] = {}
    for d, name in ((desk, "acme"), (kiwi, "kiwi")):
        await d.create_course(seats=1)
        made[name] = (await d.assign(1))[0]["id"]
    # 13:00 UTC on July 14 is 01:00 on July 15, the last drop date, in Auckland.
    clock.set(at(2026, 7, 14, 13, 0))
    acme_drop = await ok(await desk.act(made["acme"], "drop"))
    kiwi_drop = await ok(await kiwi.act(made["kiwi"], "drop"))
    assert (acme_drop["seat_recovered"], acme_drop["reason"]) == (True, "before_last_drop_date")
    assert (kiwi_drop["seat_recovered"], kiwi_drop["reason"]) == (False, "after_last_drop_date")


# --- cancel -------------------------------------------------------------------


async def test_cancel_in_the_window_rolls_everything_back(
    desk: Desk, partners: Partners, clock: FrozenClock
) -> None:
    await desk.create_course(seats=2)
    until = format_instant(T0 + timedelta(days=1))
    made = await desk.assign_raw([student(1)], dedup_window_days=30, cancelable_until=until)
    assert made.status_code == 201, made.text
    (enrollment,) = made.json()["enrollments"]
    assert enrollment["cancelable_until"] == until
    assert enrollment["id"] in partners.balances()

    clock.advance(timedelta(hours=1))
    canceled = await ok(await desk.act(enrollment["id"], "cancel", author="ops@acme"))
    assert canceled["status"] == "canceled"
    assert canceled["canceled_by"] == "ops@acme"
    assert canceled["ended_at"] == format_instant(clock.now())
    assert await desk.seats() == counts(available=2, rolled_back=1, total=3)
    stored = await desk.stored()
    assert seat_of(stored, enrollment).status == "rolled_back"
    assert stored.scheduled_of(enrollment["id"]) == {}
    assert enrollment["id"] not in partners.balances()
    assert partners.members() == set()
    (event,) = data_of(stored, "enrollment.canceled")
    assert event["enrollment_id"] == enrollment["id"]
    assert "seat_recovered" not in event

    again = await desk.assign_raw([student(1)], dedup_window_days=30)
    assert again.status_code == 201, again.text
    refused(
        await desk.act(enrollment["id"], "cancel", author="ops@acme"), 409, "ENROLLMENT_NOT_LIVE"
    )


async def test_cancel_outside_the_window_is_refused(desk: Desk, clock: FrozenClock) -> None:
    await desk.create_course(seats=2)
    (windowed,) = await desk.assign(1, cancelable_until=format_instant(T0 + timedelta(hours=1)))
    (plain,) = await desk.assign(1)
    clock.advance(timedelta(hours=1, milliseconds=1))
    refused(await desk.act(windowed["id"], "cancel", author="ops"), 409, "NOT_CANCELABLE")
    refused(await desk.act(plain["id"], "cancel", author="ops"), 409, "NOT_CANCELABLE")
    assert (await desk.get(windowed["id"]))["status"] == "assigned"
    assert await desk.seats() == counts(assigned=2, total=2)


# --- dedup --------------------------------------------------------------------


async def test_dedup_lock_outlives_a_drop(desk: Desk, clock: FrozenClock) -> None:
    await desk.create_course(seats=3)
    made = await desk.assign_raw([student(1)], dedup_window_days=30)
    assert made.status_code == 201, made.text
    refused(await desk.assign_raw([student(1)]), 409, "ENROLLMENT_EXISTS")
    await ok(await desk.act(made.json()["enrollments"][0]["id"], "drop"))
    refused(await desk.assign_raw([student(1)]), 409, "ENROLLMENT_EXISTS")
    clock.advance(timedelta(days=60, seconds=-1))
    refused(await desk.assign_raw([student(1)]), 409, "ENROLLMENT_EXISTS")
    clock.advance(timedelta(seconds=1))
    again = await desk.assign_raw([student(1)])
    assert again.status_code == 201, again.text


async def test_live_enrollment_blocks_a_new_one(desk: Desk) -> None:
    await desk.create_course(seats=3)
    assert (await desk.assign_raw([student(1)])).status_code == 201
    refused(await desk.assign_raw([student(2), student(1)]), 409, "ENROLLMENT_EXISTS")
    assert await desk.seats() == counts(available=2, assigned=1, total=3)


@pytest.mark.parametrize("days", [90, 91])
async def test_dedup_window_must_be_shorter_than_the_access_period(desk: Desk, days: int) -> None:
    await desk.create_course(seats=1)
    response = await desk.assign_raw([student(1)], dedup_window_days=days)
    assert details_of(response) == [("dedup_window_days", "out_of_range")]


# --- assign refusals ----------------------------------------------------------


async def test_no_seats_leaves_nothing_behind(desk: Desk) -> None:
    await desk.create_course(seats=2)
    refused(await desk.assign_raw(desk.new_students(3)), 409, "NO_SEATS_AVAILABLE")
    assert await desk.seats() == counts(available=2, total=2)
    stored = await desk.stored()
    assert stored.enrollments == []
    assert {s.status for s in stored.seats} == {"available"}
    assert data_of(stored, "enrollment.created") == []


async def test_assign_to_a_draft_or_unknown_course(desk: Desk) -> None:
    created = await desk.client.post("/v1/courses", headers=desk.headers, json=course_body())
    assert created.status_code == 201, created.text
    refused(await desk.assign_raw([student(1)]), 409, "COURSE_NOT_ACTIVE")
    other = Desk(desk.client, desk.key, desk.database, course="no-such-course")
    refused(await other.assign_raw([student(1)]), 404, "NOT_FOUND")


async def test_assign_validation(desk: Desk) -> None:
    await desk.create_course(seats=1)
    too_many = await desk.assign_raw([student(n) for n in range(501)])
    assert details_of(too_many)[0][0] == "students"
    duplicate = await desk.assign_raw([student(1), student(1)])
    assert details_of(duplicate) == [("students.1.student_id", "duplicate")]
    no_email = await desk.assign_raw([{"student_id": "x1"}])
    assert details_of(no_email) == [("students.0.email", "required")]
    path = f"/v1/courses/{COURSE}/enrollments"
    headers = {**desk.headers, "Content-Type": "application/json"}
    refused(
        await desk.client.post(path, content=b'{"students": [', headers=headers),
        400,
        "INVALID_JSON",
    )
    huge = b'{"students": [], "pad": "' + b"x" * (1024 * 1024) + b'"}'
    refused(await desk.client.post(path, content=huge, headers=headers), 413, "PAYLOAD_TOO_LARGE")
    assert await desk.seats() == counts(available=1, total=1)


async def test_assign_needs_a_key(desk: Desk) -> None:
    await desk.create_course(seats=1)
    path = f"/v1/courses/{COURSE}/enrollments"
    body = {"students": [student(1)]}
    refused(await desk.client.post(path, json=body), 401, "UNAUTHORIZED")
    refused(await desk.client.post(path, json=body, headers=bearer("nope")), 401, "UNAUTHORIZED")
    assert await desk.seats() == counts(available=1, total=1)


async def test_another_tenant_sees_nothing(desk: Desk, globex: str) -> None:
    await desk.create_course(seats=1)
    (made,) = await desk.assign(1)
    other = Desk(desk.client, globex, desk.database)
    refused(await other.assign_raw([student(1)]), 404, "NOT_FOUND")
    response = await other.client.get(f"/v1/enrollments/{made['id']}", headers=other.headers)
    refused(response, 404, "NOT_FOUND")
    for action, body in [
        ("claim", {"user_id": "u1"}),
        ("drop", {}),
        ("cancel", {"author": "x"}),
        ("activity", {"kind": "access"}),
    ]:
        refused(await other.act(made["id"], action, **body), 404, "NOT_FOUND")
    listed = await ok(await other.client.get("/v1/enrollments", headers=other.headers))
    assert listed["data"] == []
    assert (await desk.get(made["id"]))["status"] == "assigned"


async def test_an_id_that_is_not_a_uuid_is_404(desk: Desk) -> None:
    response = await desk.client.get("/v1/enrollments/not-a-uuid", headers=desk.headers)
    refused(response, 404, "NOT_FOUND")
    refused(await desk.act("not-a-uuid", "drop"), 404, "NOT_FOUND")


# --- lists --------------------------------------------------------------------


async def test_list_filters_and_pages(desk: Desk) -> None:
    await desk.create_course(seats=5)
    made = await desk.assign(5)
    other = Desk(desk.client, desk.key, desk.database, course="other-course")
    other.students = 100
    await other.create_course(seats=1)
    (elsewhere,) = await other.assign(1)
    await claim(desk, made[2]["id"], "u1")

    async def listing(**params: Any) -> dict[str, Any]:
        return await ok(
            await desk.client.get("/v1/enrollments", params=params, headers=desk.headers)
        )

    assert len((await listing())["data"]) == 6
    ids = [e["id"] for e in made]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"course": COURSE, "limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = await listing(**params)
        seen += [e["id"] for e in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(ids)
    assert [e["id"] for e in (await listing(course="other-course"))["data"]] == [elsewhere["id"]]
    by_person = await listing(person=made[1]["person_id"])
    assert [e["id"] for e in by_person["data"]] == [made[1]["id"]]
    assert [e["id"] for e in (await listing(status="claimed"))["data"]] == [made[2]["id"]]
    assert (await listing(status="dropped"))["data"] == []

    bad_status = await desk.client.get(
        "/v1/enrollments", params={"status": "nope"}, headers=desk.headers
    )
    assert details_of(bad_status) == [("status", "invalid")]
    bad_person = await desk.client.get(
        "/v1/enrollments", params={"person": "nope"}, headers=desk.headers
    )
    assert details_of(bad_person) == [("person", "invalid")]


# --- completion ---------------------------------------------------------------


async def test_inbound_completion_completes_the_enrollment(
    client: httpx.AsyncClient, clock: FrozenClock, acme: str, desk: Desk, partners: Partners
) -> None:
    setup = await make_setup(client, clock, acme)
    await desk.create_course(
        seats=1,
        program_id="co-earned-time",
        external_ids={"edovo": "ext-1"},
        certificate_validity_days=365,
    )
    made = await desk.assign_raw(
        [{"student_id": "123456", "email": "learner@example.edu"}],
        identifier_namespace="us_co_doc_id",
    )
    assert made.status_code == 201, made.text
    (enrollment,) = made.json()["enrollments"]
    assert enrollment["person_id"] == setup.person_id

    elsewhere = await setup.send(setup.payload(course_id="ext-2"))
    assert elsewhere.status_code == 201, elsewhere.text
    assert (await desk.get(enrollment["id"]))["status"] == "assigned"
    assert data_of(await desk.stored(), "enrollment.completed") == []

    clock.advance(timedelta(hours=1))
    done = await setup.send(setup.payload(course_id="ext-1"))
    assert done.status_code == 201, done.text
    completed = await desk.get(enrollment["id"])
    assert completed["status"] == "completed"
    assert completed["completion_id"] == done.json()["completion_id"]
    assert completed["completed_at"] == format_instant(clock.now())
    expires = clock.now() + timedelta(days=365)
    assert completed["certificate_expires_at"] == format_instant(expires)

    stored = await desk.stored()
    (event,) = data_of(stored, "enrollment.completed")
    assert event["enrollment_id"] == enrollment["id"]
    assert event["status"] == "completed"
    assert stored.scheduled_of(enrollment["id"]) == {
        "cert_expiration_reminder_30_days": expires - timedelta(days=30),
        "course_archived": expires,
    }
    refused(await desk.act(enrollment["id"], "drop"), 409, "ENROLLMENT_NOT_LIVE")
