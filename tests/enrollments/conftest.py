"""Enrollment fixtures: an application with durable execution launched (the saga is a
DBOS workflow the request waits for), fake partners in a file of their own, and a
course with seats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from coursegate import durable
from coursegate.app import create_app
from coursegate.config import Settings
from coursegate.db import Database
from coursegate.enrollments.adapters import Adapters, FakePartners, QueuedInvitations
from coursegate.enrollments.service import access_group
from coursegate.kit.clock import FrozenClock
from coursegate.models import Enrollment, Event, OutboundEmail, ScheduledEvent, Seat
from tests.conftest import bearer
from tests.courses.helpers import course_body

COURSE = "fin-lit-101"


@dataclass
class Partners:
    """The fake partners, and the faults the next calls meet."""

    fake: FakePartners
    invitations: QueuedInvitations

    def fail(self, operation: str, mode: str = "fail") -> None:
        self.fake.faults[operation] = mode
        self.invitations.faults[operation] = mode

    def heal(self) -> None:
        self.fake.faults.clear()
        self.invitations.faults.clear()

    def members(self, tenant: str = "acme", course: str = COURSE) -> set[str]:
        return self.fake.members(access_group(tenant, course))

    def balances(self) -> dict[str, int]:
        return self.fake.balances()


@pytest.fixture
def partners(tmp_path: Path) -> Partners:
    return Partners(FakePartners(tmp_path / "partners.db"), QueuedInvitations())


@pytest.fixture
async def app(
    settings: Settings, database: Database, clock: FrozenClock, partners: Partners
) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database=database, clock=clock)
    application.state.adapters = Adapters(partners.fake, partners.fake, partners.invitations)
    await durable.launch(settings, database, durable.Role.API, clock, application.state.adapters)
    try:
        yield application
    finally:
        durable.shutdown()
        application.state.enqueuer.close()


@dataclass
class Desk:
    """A tenant's view of one course: assign, act on enrollments, look at what is stored."""

    client: httpx.AsyncClient
    key: str
    database: Database
    course: str = COURSE
    students: int = field(default=0)

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.key)

    async def create_course(self, seats: int = 10, **overrides: Any) -> None:
        body = course_body(id=self.course, **overrides)
        response = await self.client.post("/v1/courses", headers=self.headers, json=body)
        assert response.status_code == 201, response.text
        response = await self.client.post(
            f"/v1/courses/{self.course}/activate", headers=self.headers
        )
        assert response.status_code == 200, response.text
        if seats:
            await self.order(seats)

    async def order(self, seats: int, ref: str | None = None) -> None:
        response = await self.client.post(
            f"/v1/courses/{self.course}/seats",
            headers=self.headers,
            json={"quantity": seats, "order_ref": ref or f"order-{self.course}-{seats}"},
        )
        assert response.status_code == 201, response.text

    def new_students(self, count: int) -> list[dict[str, str]]:
        start, self.students = self.students, self.students + count
        return [
            {"student_id": f"s{n:04d}", "email": f"s{n:04d}@example.edu", "name": f"Student {n}"}
            for n in range(start, start + count)
        ]

    async def assign_raw(self, students: list[dict[str, str]], **extra: Any) -> httpx.Response:
        return await self.client.post(
            f"/v1/courses/{self.course}/enrollments",
            headers=self.headers,
            json={"students": students, **extra},
        )

    async def assign(self, count: int = 1, **extra: Any) -> list[dict[str, Any]]:
        response = await self.assign_raw(self.new_students(count), **extra)
        assert response.status_code == 201, response.text
        enrollments: list[dict[str, Any]] = response.json()["enrollments"]
        return enrollments

    async def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.client.post(path, headers=self.headers, json=body or {})

    async def act(self, enrollment_id: str, action: str, **body: Any) -> httpx.Response:
        return await self.post(f"/v1/enrollments/{enrollment_id}/{action}", body)

    async def get(self, enrollment_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/v1/enrollments/{enrollment_id}", headers=self.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def seats(self) -> dict[str, int]:
        response = await self.client.get(f"/v1/courses/{self.course}/seats", headers=self.headers)
        assert response.status_code == 200, response.text
        counts: dict[str, int] = response.json()
        return counts

    async def stored(self) -> Stored:
        async with self.database.transaction() as session:
            return Stored(
                enrollments=list((await session.scalars(select(Enrollment))).all()),
                seats=list((await session.scalars(select(Seat))).all()),
                events=list((await session.scalars(select(Event).order_by(Event.id))).all()),
                emails=list((await session.scalars(select(OutboundEmail))).all()),
                scheduled=list((await session.scalars(select(ScheduledEvent))).all()),
            )


@dataclass
class Stored:
    enrollments: list[Enrollment]
    seats: list[Seat]
    events: list[Event]
    emails: list[OutboundEmail]
    scheduled: list[ScheduledEvent]

    def event_types(self) -> list[str]:
        return [e.type for e in self.events]

    def scheduled_of(self, enrollment_id: str) -> dict[str, Any]:
        return {s.kind: s.due_at for s in self.scheduled if str(s.enrollment_id) == enrollment_id}


@pytest.fixture
async def desk(client: httpx.AsyncClient, acme: str, database: Database) -> Desk:
    return Desk(client, acme, database)
