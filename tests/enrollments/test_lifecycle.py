"""Scheduled lifecycle events (SPEC §3): which rows assignment, activity, endings and
completion leave behind, the sweeper that fires them once when due, the daily course
expiry, and the reminder emails reaching a real SMTP server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from coursegate import durable
from coursegate.db import Database
from coursegate.enrollments import lifecycle
from coursegate.enrollments.sweeper import (
    SWEEP_BATCH,
    Sweeper,
    expire_courses,
    sweep_lifecycle,
)
from coursegate.kit.clock import FrozenClock
from coursegate.mail.mailer import SmtpMailer
from coursegate.mail.queue import MailSender
from coursegate.models import Course, Enrollment, Event, ScheduledEvent
from tests.completions.conftest import make_setup
from tests.conftest import T0, create_tenant
from tests.enrollments.conftest import Desk, Partners, Stored
from tests.mail.conftest import SmtpServer, smtp_server  # noqa: F401

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
SENDER = "CourseGate <noreply@coursegate.example>"
NO_ACCESS_SUBJECT = "You have not started Financial Literacy yet"


def sweeper(app: FastAPI, database: Database, clock: FrozenClock) -> Sweeper:
    return Sweeper(database, clock, app.state.adapters)


def reminders(stored: Stored, kind: str | None = None) -> list[Event]:
    return [
        e
        for e in stored.events
        if e.type == "enrollment.reminder" and (kind is None or e.data["kind"] == kind)
    ]


def events_of(stored: Stored, enrollment_id: str, type_: str | None = None) -> list[Event]:
    return [
        e
        for e in stored.events
        if e.data.get("enrollment_id") == enrollment_id and (type_ is None or e.type == type_)
    ]


def reminder_emails(stored: Stored, kind: str) -> list[Any]:
    return [m for m in stored.emails if m.kind == f"enrollment.reminder.{kind}"]


def enrollment_of(stored: Stored, enrollment_id: str) -> Enrollment:
    [found] = [e for e in stored.enrollments if str(e.id) == enrollment_id]
    return found


async def activity(desk: Desk, enrollment_id: str, at: datetime | None = None) -> None:
    body: dict[str, Any] = {"kind": "access"}
    if at is not None:
        body["at"] = at.isoformat().replace("+00:00", "Z")
    response = await desk.act(enrollment_id, "activity", **body)
    assert response.status_code == 200, response.text


# --- rows created on assignment ---------------------------------------------------------


async def test_assignment_schedules_reminders_and_expiry(desk: Desk) -> None:
    await desk.create_course(seats=2)
    [made] = await desk.assign(1)
    stored = await desk.stored()
    ends = T0 + timedelta(days=90)
    assert stored.scheduled_of(made["id"]) == {
        lifecycle.REMINDER_NO_ACCESS: T0 + timedelta(days=3),
        lifecycle.ACCESS_PERIOD_REMINDER: ends - timedelta(days=30),
        lifecycle.COURSE_EXPIRED: ends,
    }
    assert enrollment_of(stored, made["id"]).access_ends_at == ends


async def test_short_access_period_has_no_access_period_reminder(desk: Desk) -> None:
    await desk.create_course(seats=2, access_period_days=30)
    [made] = await desk.assign(1)
    stored = await desk.stored()
    assert stored.scheduled_of(made["id"]) == {
        lifecycle.REMINDER_NO_ACCESS: T0 + timedelta(days=3),
        lifecycle.COURSE_EXPIRED: T0 + timedelta(days=30),
    }


# --- reminders fire once, when due ---------------------------------------------------------


async def test_no_access_reminder_fires_once_when_due(
    desk: Desk, app: FastAPI, database: Database, clock: FrozenClock
) -> None:
    await desk.create_course(seats=2)
    [made] = await desk.assign(1)
    sweep = sweeper(app, database, clock)

    clock.set(T0 + timedelta(days=3) - SECOND)
    assert await sweep.sweep() == 0
    stored = await desk.stored()
    assert reminders(stored) == []
    assert reminder_emails(stored, lifecycle.REMINDER_NO_ACCESS) == []

    clock.set(T0 + timedelta(days=3) + SECOND)
    assert await sweep.sweep() == 1
    stored = await desk.stored()
    [event] = reminders(stored)
    assert event.data["kind"] == lifecycle.REMINDER_NO_ACCESS
    assert event.data["enrollment_id"] == made["id"]
    assert event.data["course_id"] == desk.course
    assert event.data["person"]["id"] == made["person_id"]
    assert event.data["person"]["identifiers"] == [{"namespace": "student_id", "value": "s0000"}]
    [email] = reminder_emails(stored, lifecycle.REMINDER_NO_ACCESS)
    assert email.to_address == "s0000@example.edu"
    assert email.subject == NO_ACCESS_SUBJECT
    assert made["id"] in email.body
    assert lifecycle.REMINDER_NO_ACCESS not in stored.scheduled_of(made["id"])
    assert enrollment_of(stored, made["id"]).status == "assigned"

    assert await sweep.sweep() == 0
    clock.advance(timedelta(days=1))
    assert await sweep.sweep() == 0
    stored = await desk.stored()
    assert len(reminders(stored)) == 1
    assert len(reminder_emails(stored, lifecycle.REMINDER_NO_ACCESS)) == 1


async def test_activity_cancels_the_no_access_reminder(
    desk: Desk, app: FastAPI, database: Database, clock: FrozenClock
) -> None:
    await desk.create_course(seats=2)
    [made] = await desk.assign(1)
    clock.set(T0 + timedelta(days=3) - timedelta(minutes=1))
    await activity(desk, made["id"])
    stored = await desk.stored()
    assert lifecycle.REMINDER_NO_ACCESS not in stored.scheduled_of(made["id"])

    clock.set(T0 + timedelta(days=4))
    assert await sweeper(app, database, clock).sweep() == 0
    stored = await desk.stored()
    assert reminders(stored, lifecycle.REMINDER_NO_ACCESS) == []
    assert reminder_emails(stored, lifecycle.REMINDER_NO_ACCESS) == []


async def test_no_activity_reminder_follows_the_latest_activity(
    desk: Desk, app: FastAPI, database: Database, clock: FrozenClock
) -> None:
    await desk.create_course(seats=2)
    [made] = await desk.assign(1)
    sweep = sweeper(app, database, clock)
    first = T0 + timedelta(hours=1)
    clock.set(first)
    await activity(desk, made["id"])
    stored = await desk.stored()
    assert stored.scheduled_of(made["id"])[lifecycle.NO_ACTIVITY] == first + timedelta(days=7)

    # A later activity moves it; one reported for a moment before the latest does not.
    second = T0 + timedelta(days=5)
    clock.set(second)
    await activity(desk, made["id"])
    await activity(desk, made["id"], at=second - timedelta(days=2))
    stored = await desk.stored()
    assert stored.scheduled_of(made["id"])[lifecycle.NO_ACTIVITY] == second + timedelta(days=7)

    # Seven days after the first activity (the old due time): nothing.
    clock.set(first + timedelta(days=7) + SECOND)
    assert await sweep.sweep() == 0
    clock.set(second + timedelta(days=7) - SECOND)
    assert await sweep.sweep() == 0
    assert reminders(await desk.stored()) == []

    clock.set(second + timedelta(days=7))
    assert await sweep.sweep() == 1
    stored = await desk.stored()
    [event] = reminders(stored)
    assert event.data["kind"] == lifecycle.NO_ACTIVITY
    assert event.data["enrollment_id"] == made["id"]
    assert event.data["person"]["id"] == made["person_id"]
    [email] = reminder_emails(stored, lifecycle.NO_ACTIVITY)
    assert email.to_address == "s0000@example.edu"
    assert email.subject == "We miss you in Financial Literacy"

    clock.advance(timedelta(days=1))
    assert await sweep.sweep() == 0
    assert len(reminders(await desk.stored())) == 1


async def test_access_period_reminder_fires_thirty_days_before_the_end(
    desk: Desk, app: FastAPI, database: Database, clock: FrozenClock
) -> None:
    await desk.create_course(seats=2)
    [made] = await desk.assign(1)
    await activity(desk, made["id"])  # no no-access reminder in the way
    sweep = sweeper(app, database, clock)
    due = T0 + timedelta(days=60)
    clock.set(due - SECOND)
    assert await sweep.sweep() == 1  # the no-activity reminder, 7 days after the access
    assert reminders(await desk.stored(), lifecycle.ACCESS_PERIOD_REMINDER) == []
    clock.set(due)
    assert await sweep.sweep() == 1
    stored = await desk.stored()
    [event] = reminders(stored, lifecycle.ACCESS_PERIOD_REMINDER)
    assert event.data["enrollment_id"] == made["id"]
    [email] = reminder_emails(stored, lifecycle.ACCESS_PERIOD_REMINDER)
    assert email.subject == "Your access to Financial Literacy ends in 30 days"
    assert enrollment_of(stored, made["id"]).status == "assigned"


# --- the access period ends ------------------------------------------------------------------


async def test_course_expired_at_access_end(
    desk: Desk, app: FastAPI, database: Database, clock: FrozenClock, partners: Partners
) -> None:
    await desk.create_course(seats=3)
    made, other = await desk.assign(2)
    ends = T0 + timedelta(days=90)
    # A late activity leaves a no-activity row due after the access period ends.
    clock.set(ends - timedelta(days=1))
    await activity(desk, made["id"])
    assert made["person_id"] in partners.members()
    assert partners.balances()[made["id"]] > 0
    sweep = sweeper(app, database, clock)

    clock.set(ends - SECOND)
    await sweep.sweep()
    stored = await desk.stored()
    assert enrollment_of(stored, made["id"]).status == "assigned"
    assert events_of(stored, made["id"], "enrollment.expired") == []

    clock.set(ends)
    assert await sweep.sweep() == 2  # both enrollments' course_expired
    stored = await desk.stored()
    for enrollment in (made, other):
        expired = enrollment_of(stored, enrollment["id"])
        assert (expired.status, expired.reason) == ("expired", "access_period_ended")
        assert expired.ended_at == ends
        [event] = events_of(stored, enrollment["id"], "enrollment.expired")
        assert event.data["status"] == "expired"
        assert event.data["reason"] == "access_period_ended"
        assert event.data["person"]["id"] == enrollment["person_id"]
        assert stored.scheduled_of(enrollment["id"]) == {}
        assert partners.balances()[enrollment["id"]] == 0
    assert partners.members() == set()

    # Nothing more ever fires: the no-activity row went with the expiry.
    clock.set(ends + timedelta(days=30))
    assert await sweep.sweep() == 0
    after = await desk.stored()
    assert len(after.events) == len(stored.events)
    assert len(after.emails) == len(stored.emails)


async def test_rows_of_one_enrollment_in_one_batch_apply_in_due_order(
    desk: Desk, app: FastAPI, database: Database, clock: FrozenClock, partners: Partners
) -> None:
    """A sweeper that was down fires a late enrollment's whole history in one batch:
    the reminders due while it was live, then the expiry; a row due after the expiry
    (here a no-activity reminder) no longer applies."""
    await desk.create_course(seats=2)
    [made] = await desk.assign(1)
    ends = T0 + timedelta(days=90)
    async with database.transaction() as session:
        session.add(
            ScheduledEvent(
                tenant_id="acme",
                enrollment_id=uuid.UUID(made["id"]),
                kind=lifecycle.NO_ACTIVITY,
                due_at=ends + SECOND,
            )
        )
    clock.set(ends + timedelta(minutes=1))
    assert await sweeper(app, database, clock).sweep() == 4
    stored = await desk.stored()
    fired = [
        (e.type, e.data.get("kind"))
        for e in events_of(stored, made["id"])
        if e.type != "enrollment.created"
    ]
    assert fired == [
        ("enrollment.reminder", lifecycle.REMINDER_NO_ACCESS),
        ("enrollment.reminder", lifecycle.ACCESS_PERIOD_REMINDER),
        ("enrollment.expired", None),
    ]
    assert len(reminder_emails(stored, lifecycle.REMINDER_NO_ACCESS)) == 1
    assert len(reminder_emails(stored, lifecycle.ACCESS_PERIOD_REMINDER)) == 1
    assert reminder_emails(stored, lifecycle.NO_ACTIVITY) == []
    assert enrollment_of(stored, made["id"]).status == "expired"
    assert stored.scheduled_of(made["id"]) == {}


async def test_ended_enrollments_lose_their_rows(
    desk: Desk, app: FastAPI, database: Database, clock: FrozenClock, partners: Partners
) -> None:
    await desk.create_course(seats=4)
    dropped, canceled = await desk.assign(2, cancelable_until="2026-06-20T00:00:00Z")
    response = await desk.act(dropped["id"], "drop")
    assert response.status_code == 200, response.text
    response = await desk.act(canceled["id"], "cancel", author="registrar")
    assert response.status_code == 200, response.text
    stored = await desk.stored()
    assert stored.scheduled_of(dropped["id"]) == {}
    assert stored.scheduled_of(canceled["id"]) == {}

    clock.set(T0 + timedelta(days=400))
    assert await sweeper(app, database, clock).sweep() == 0
    after = await desk.stored()
    assert [e.type for e in after.events] == stored.event_types()
    assert len(after.emails) == len(stored.emails)
    assert enrollment_of(after, dropped["id"]).status == "dropped"
    assert enrollment_of(after, canceled["id"]).status == "canceled"


async def test_sweeper_ignores_a_stale_row_of_an_ended_enrollment(
    desk: Desk, app: FastAPI, database: Database, clock: FrozenClock, partners: Partners
) -> None:
    await desk.create_course(seats=3)
    [made] = await desk.assign(1)
    response = await desk.act(made["id"], "drop")
    assert response.status_code == 200, response.text
    before = await desk.stored()
    dropped = enrollment_of(before, made["id"])
    due = T0 + timedelta(hours=1)
    async with database.transaction() as session:
        for kind in (
            lifecycle.REMINDER_NO_ACCESS,
            lifecycle.NO_ACTIVITY,
            lifecycle.ACCESS_PERIOD_REMINDER,
            lifecycle.COURSE_EXPIRED,
            lifecycle.CERT_EXPIRATION_REMINDER,
            lifecycle.COURSE_ARCHIVED,
        ):
            session.add(
                ScheduledEvent(
                    tenant_id=dropped.tenant_id, enrollment_id=dropped.id, kind=kind, due_at=due
                )
            )

    clock.set(due + SECOND)
    assert await sweeper(app, database, clock).sweep() == 6  # taken, but none applies
    after = await desk.stored()
    assert after.scheduled_of(made["id"]) == {}
    assert after.event_types() == before.event_types()
    assert len(after.emails) == len(before.emails)
    still = enrollment_of(after, made["id"])
    assert (still.status, still.reason) == (dropped.status, dropped.reason)
    assert still.updated_at == dropped.updated_at


# --- completion with a certificate -------------------------------------------------------------


async def test_completion_with_certificate_schedules_reminder_and_archive(
    desk: Desk,
    client: httpx.AsyncClient,
    app: FastAPI,
    database: Database,
    clock: FrozenClock,
    partners: Partners,
) -> None:
    setup = await make_setup(client, clock, desk.key)
    await desk.create_course(
        seats=2, certificate_validity_days=365, external_ids={"edovo": "fin-lit-101"}
    )
    response = await desk.assign_raw(
        [{"student_id": "123456", "email": "ada@example.org", "name": "Ada"}],
        identifier_namespace="us_co_doc_id",
    )
    assert response.status_code == 201, response.text
    [made] = response.json()["enrollments"]
    assert made["person_id"] == setup.person_id

    completed_at = T0 + timedelta(days=1)
    clock.set(completed_at)
    response = await setup.send(setup.payload(completed_at="2026-06-11T10:00:00Z"))
    assert response.status_code == 201, response.text
    stored = await desk.stored()
    completed = enrollment_of(stored, made["id"])
    assert completed.status == "completed"
    expires = completed_at + timedelta(days=365)
    assert completed.certificate_expires_at == expires
    assert stored.scheduled_of(made["id"]) == {
        lifecycle.CERT_EXPIRATION_REMINDER: expires - timedelta(days=30),
        lifecycle.COURSE_ARCHIVED: expires,
    }

    sweep = sweeper(app, database, clock)
    clock.set(expires - timedelta(days=30) - SECOND)
    assert await sweep.sweep() == 0
    clock.set(expires - timedelta(days=30))
    assert await sweep.sweep() == 1
    stored = await desk.stored()
    [event] = reminders(stored)
    assert event.data["kind"] == lifecycle.CERT_EXPIRATION_REMINDER
    assert event.data["enrollment_id"] == made["id"]
    [email] = reminder_emails(stored, lifecycle.CERT_EXPIRATION_REMINDER)
    assert email.to_address == "ada@example.org"
    assert email.subject == "Your Financial Literacy certificate expires in 30 days"

    clock.set(expires - SECOND)
    assert await sweep.sweep() == 0
    assert enrollment_of(await desk.stored(), made["id"]).status == "completed"
    clock.set(expires)
    assert await sweep.sweep() == 1
    stored = await desk.stored()
    archived = enrollment_of(stored, made["id"])
    assert archived.status == "archived"
    [event] = events_of(stored, made["id"], "enrollment.archived")
    assert event.data["status"] == "archived"
    assert stored.scheduled_of(made["id"]) == {}
    clock.advance(timedelta(days=400))
    assert await sweep.sweep() == 0


# --- batches -----------------------------------------------------------------------------------


@pytest.mark.long
async def test_twelve_hundred_due_rows_fire_once_each_in_one_sweep(
    desk: Desk, app: FastAPI, database: Database, clock: FrozenClock
) -> None:
    await desk.create_course(seats=1200)
    made = [*await desk.assign(500), *await desk.assign(500), *await desk.assign(200)]
    assert len({m["id"] for m in made}) == 1200
    assert SWEEP_BATCH == 500

    clock.set(T0 + timedelta(days=3))
    assert await sweeper(app, database, clock).sweep(batch=500) == 1200
    stored = await desk.stored()
    fired = reminders(stored, lifecycle.REMINDER_NO_ACCESS)
    assert len(fired) == 1200
    assert {e.data["enrollment_id"] for e in fired} == {m["id"] for m in made}
    emails = reminder_emails(stored, lifecycle.REMINDER_NO_ACCESS)
    assert len(emails) == 1200
    assert len({e.to_address for e in emails}) == 1200
    assert not any(s.kind == lifecycle.REMINDER_NO_ACCESS for s in stored.scheduled)

    assert await sweeper(app, database, clock).sweep(batch=500) == 0
    assert len(reminders(await desk.stored())) == 1200


# --- the daily course expiry -------------------------------------------------------------------


async def test_course_expiry_on_end_date_in_tenant_timezone(
    client: httpx.AsyncClient,
    app: FastAPI,
    database: Database,
    clock: FrozenClock,
    partners: Partners,
) -> None:
    key = await create_tenant(database, clock, "kiwi", timezone="Pacific/Auckland")
    desk = Desk(client, key, database)
    await desk.create_course(seats=6, access_period_days=365)
    assigned, claimed, active, done = await desk.assign(4)
    response = await desk.act(claimed["id"], "claim", user_id="u-claimed")
    assert response.status_code == 200, response.text
    response = await desk.act(active["id"], "claim", user_id="u-active")
    assert response.status_code == 200, response.text
    clock.set(datetime(2026, 7, 2, 12, tzinfo=UTC))
    response = await desk.post("/v1/sessions", {"user_id": "u-active"})
    assert response.status_code == 200, response.text
    async with database.transaction() as session:
        await session.execute(
            update(Enrollment)
            .where(Enrollment.tenant_id == "kiwi", Enrollment.id == uuid.UUID(done["id"]))
            .values(status="completed", completed_at=clock.now())
        )
    # A UTC tenant's course with the same end date must wait for its own midnight.
    other_key = await create_tenant(database, clock, "utc-co")
    other = Desk(client, other_key, database)
    await other.create_course(seats=1, access_period_days=365)
    [elsewhere] = await other.assign(1)

    live = (assigned, claimed, active)
    stored = await desk.stored()
    statuses = {m["id"]: enrollment_of(stored, m["id"]).status for m in (*live, done)}
    assert statuses == {
        assigned["id"]: "assigned",
        claimed["id"]: "claimed",
        active["id"]: "active",
        done["id"]: "completed",
    }
    assert partners.members("kiwi") == {m["person_id"] for m in (*live, done)}
    sweep = sweeper(app, database, clock)

    # 2026-09-30 begins in Auckland (UTC+13) at 2026-09-29T11:00Z.
    clock.set(datetime(2026, 9, 29, 10, 59, 59, tzinfo=UTC))
    assert await sweep.expire_courses() == 0
    stored = await desk.stored()
    assert not any(e.type == "enrollment.expired" for e in stored.events)
    assert await course_status(database, "kiwi") == "active"

    clock.set(datetime(2026, 9, 29, 11, 0, tzinfo=UTC))
    assert await sweep.expire_courses() == 3
    stored = await desk.stored()
    assert await course_status(database, "kiwi") == "expired"
    assert await course_status(database, "utc-co") == "active"
    for enrollment in live:
        row = enrollment_of(stored, enrollment["id"])
        assert (row.status, row.reason) == ("expired", "course_ended")
        assert row.ended_at == clock.now()
        [event] = events_of(stored, enrollment["id"], "enrollment.expired")
        assert event.tenant_id == "kiwi"
        assert event.data["reason"] == "course_ended"
        assert event.data["person"]["id"] == enrollment["person_id"]
        assert partners.balances()[enrollment["id"]] == 0
        assert stored.scheduled_of(enrollment["id"]) == {}
    untouched = enrollment_of(stored, done["id"])
    assert (untouched.status, untouched.reason, untouched.ended_at) == ("completed", None, None)
    assert events_of(stored, done["id"], "enrollment.expired") == []
    assert partners.balances()[done["id"]] > 0
    assert partners.members("kiwi") == {done["person_id"]}
    assert enrollment_of(stored, elsewhere["id"]).status == "assigned"

    assert await sweep.expire_courses() == 0
    again = await desk.stored()
    assert again.event_types() == stored.event_types()
    assert [(e.id, e.status, e.updated_at) for e in again.enrollments] == [
        (e.id, e.status, e.updated_at) for e in stored.enrollments
    ]


async def test_course_expiry_waits_for_midnight_west_of_utc_and_batches(
    client: httpx.AsyncClient,
    app: FastAPI,
    database: Database,
    clock: FrozenClock,
    partners: Partners,
) -> None:
    key = await create_tenant(database, clock, "west", timezone="America/Los_Angeles")
    desk = Desk(client, key, database)
    await desk.create_course(seats=501, access_period_days=365)
    made = [*await desk.assign(500), *await desk.assign(1)]
    sweep = sweeper(app, database, clock)

    # The UTC date is already 2026-09-30, but in Los Angeles (UTC-7) it is still the 29th.
    clock.set(datetime(2026, 9, 30, 6, 59, 59, tzinfo=UTC))
    assert await sweep.expire_courses() == 0
    assert await course_status(database, "west") == "active"

    clock.set(datetime(2026, 9, 30, 7, 0, tzinfo=UTC))
    assert await sweep.expire_courses() == 501  # more than one batch of EXPIRY_BATCH
    assert await course_status(database, "west") == "expired"
    stored = await desk.stored()
    assert {e.status for e in stored.enrollments} == {"expired"}
    assert {e.reason for e in stored.enrollments} == {"course_ended"}
    expired = [e for e in stored.events if e.type == "enrollment.expired"]
    assert sorted(e.data["enrollment_id"] for e in expired) == sorted(m["id"] for m in made)
    assert set(partners.balances().values()) == {0}
    assert partners.members("west") == set()
    assert stored.scheduled == []
    assert await sweep.expire_courses() == 0


async def test_short_certificate_has_no_expiration_reminder(
    desk: Desk, client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    setup = await make_setup(client, clock, desk.key)
    await desk.create_course(
        seats=2, certificate_validity_days=30, external_ids={"edovo": "fin-lit-101"}
    )
    response = await desk.assign_raw(
        [{"student_id": "123456", "email": "ada@example.org"}],
        identifier_namespace="us_co_doc_id",
    )
    assert response.status_code == 201, response.text
    [made] = response.json()["enrollments"]
    response = await setup.send(setup.payload())
    assert response.status_code == 201, response.text
    stored = await desk.stored()
    assert enrollment_of(stored, made["id"]).status == "completed"
    assert stored.scheduled_of(made["id"]) == {lifecycle.COURSE_ARCHIVED: T0 + timedelta(days=30)}


async def course_status(database: Database, tenant_id: str) -> str:
    async with database.transaction() as session:
        course = await session.get(Course, (tenant_id, "fin-lit-101"))
        assert course is not None
        return course.status


# --- real SMTP -----------------------------------------------------------------------------------


async def test_fired_reminder_reaches_the_smtp_server(
    desk: Desk,
    app: FastAPI,
    database: Database,
    clock: FrozenClock,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    await desk.create_course(seats=2)
    [made] = await desk.assign(1)
    clock.set(T0 + timedelta(days=3))
    assert await sweeper(app, database, clock).sweep() == 1

    sender = MailSender(database, SmtpMailer(smtp_server.url, timeout=5), clock, sender=SENDER)
    while await sender.step():
        pass
    received = [m for m in smtp_server.inbox.messages if m.message["Subject"] == NO_ACCESS_SUBJECT]
    [message] = received
    assert message.rcpt_tos == ["s0000@example.edu"]
    assert message.message["To"] == "s0000@example.edu"
    assert "Financial Literacy" in message.message["Subject"]
    assert made["id"] in message.message.get_content()
    stored = await desk.stored()
    [email] = reminder_emails(stored, lifecycle.REMINDER_NO_ACCESS)
    assert email.status == "sent"


# --- the DBOS schedules ----------------------------------------------------------------------------


def test_lifecycle_schedules_are_declared() -> None:
    schedules = durable.REGISTRY.schedules
    sweep = schedules["sweep-lifecycle"]
    assert sweep.workflow is sweep_lifecycle
    assert sweep.cron.split() == ["0", "*", "*", "*", "*", "*"]
    expiry = schedules["expire-courses"]
    assert expiry.workflow is expire_courses
    assert len(expiry.cron.split()) == 6
