"""The enrollment events of SPEC §5's catalogue, built in one place for every writer
(the services, the saga, the sweeper and the inbound completion path)."""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from coursegate.completions.repository import PersonRef
from coursegate.events.outbox import NewEvent


class EnrollmentFacts(Protocol):
    """What events and the outside systems need of an enrollment: met by the mapped
    `Enrollment` and by the plain rows the sweeper reads."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def course_id(self) -> str: ...
    @property
    def person_id(self) -> uuid.UUID: ...
    @property
    def status(self) -> str: ...
    @property
    def reason(self) -> str | None: ...


EVENT_OF_STATUS = {"assigned": "created", "active": "activated"}
"""The catalogue names the transition: an enrollment that became `assigned` was created."""


def enrollment_event(
    enrollment: EnrollmentFacts, person: PersonRef, *, seat_recovered: bool | None = None
) -> NewEvent:
    """The event of the transition that led to the enrollment's status."""
    data: dict[str, Any] = {
        "enrollment_id": str(enrollment.id),
        "course_id": enrollment.course_id,
        "person": person.as_event(),
        "status": enrollment.status,
    }
    if enrollment.reason is not None:
        data["reason"] = enrollment.reason
    if seat_recovered is not None:
        data["seat_recovered"] = seat_recovered
    kind = EVENT_OF_STATUS.get(enrollment.status, enrollment.status)
    return NewEvent(f"enrollment.{kind}", data)


def reminder_event(enrollment: EnrollmentFacts, person: PersonRef, kind: str) -> NewEvent:
    return NewEvent(
        "enrollment.reminder",
        {
            "enrollment_id": str(enrollment.id),
            "course_id": enrollment.course_id,
            "person": person.as_event(),
            "kind": kind,
        },
    )
