"""Enrollments' JSON in and out."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from coursegate.kit.fields import Email, Namespace, StrictInput
from coursegate.kit.timefmt import Instant

MAX_BATCH = 500

StudentId = Annotated[str, Field(min_length=1, max_length=256)]


class Student(StrictInput):
    student_id: StudentId
    email: Email
    name: Annotated[str, Field(min_length=1, max_length=256)] | None = None


class AssignRequest(StrictInput):
    students: Annotated[list[Student], Field(min_length=1, max_length=MAX_BATCH)]
    identifier_namespace: Namespace = "student_id"
    dedup_window_days: Annotated[int, Field(strict=True, ge=0, le=3650)] | None = None
    cancelable_until: Instant | None = None


class ClaimRequest(StrictInput):
    user_id: Annotated[str, Field(min_length=1, max_length=256)]


class SessionRequest(ClaimRequest):
    pass


class CancelRequest(StrictInput):
    author: Annotated[str, Field(min_length=1, max_length=256)]


class ActivityRequest(StrictInput):
    kind: Literal["access", "progress"]
    at: Instant | None = None


class EnrollmentOut(BaseModel):
    id: uuid.UUID
    course_id: str
    person_id: uuid.UUID
    status: str
    reason: str | None
    seat_id: uuid.UUID | None
    """None for an enrollment a roster made."""
    dedup_window_days: int | None
    cancelable_until: Instant | None
    access_ends_at: Instant
    claimed_at: Instant | None
    activated_at: Instant | None
    first_access_at: Instant | None
    last_activity_at: Instant | None
    completed_at: Instant | None
    completion_id: uuid.UUID | None
    certificate_expires_at: Instant | None
    ended_at: Instant | None
    canceled_by: str | None
    created_at: Instant
    updated_at: Instant


class EnrollmentsOut(BaseModel):
    enrollments: list[EnrollmentOut]


class DropOut(BaseModel):
    enrollment: EnrollmentOut
    seat_recovered: bool
    reason: str
