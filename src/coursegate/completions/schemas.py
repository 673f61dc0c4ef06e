"""Completions', the inbound audit's and parked reports' JSON out."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel

from coursegate.completions.payload import parse_report
from coursegate.kit.errors import DomainError
from coursegate.kit.fields import HoursText
from coursegate.kit.timefmt import Instant
from coursegate.models import ParkedRequest
from coursegate.people.schemas import Identifier


class CompletionOut(BaseModel):
    id: uuid.UUID
    program_id: str
    person_id: uuid.UUID
    provider_id: str
    course_id: str
    course_name: str | None
    content_hours: HoursText
    completed_at: Instant
    recorded_at: Instant


class AuditOut(BaseModel):
    id: uuid.UUID
    provider_id: str
    key_id: str | None
    outcome: str
    status: int
    reason: str | None
    completion_id: uuid.UUID | None
    parked_id: uuid.UUID | None
    replay_of: uuid.UUID | None
    received_at: Instant


class ParkedOut(BaseModel):
    id: uuid.UUID
    provider_id: str
    key_id: str | None
    identifier: Identifier | None
    """The partner's person id in the program's namespace: who is not known yet."""
    course_id: str | None
    content_hours: HoursText | None
    completed_at: Instant | None
    parked_at: Instant
    attempts: int
    resolved_at: Instant | None
    outcome: str | None
    """Null while the report waits; else `accepted`, `duplicate`, or a refusal's code."""


class ReplayOut(BaseModel):
    outcome: str
    """`accepted`, `duplicate`, `still_parked`, or a refusal's code."""
    replayed: bool
    """False when the report had been resolved before this call: nothing was done."""
    parked: ParkedOut


def parked_out(parked: ParkedRequest) -> ParkedOut:
    """The stored report's fields come from its body (verified when it arrived); a body
    that no longer reads as a report leaves them null."""
    person: str | None = None
    course_id: str | None = None
    hours: Decimal | None = None
    completed_at: datetime | None = None
    try:
        report = parse_report(parked.body, jurisdiction=None, now=None)
    except DomainError:
        pass
    else:
        person, course_id = report.person_id, report.course_id
        hours, completed_at = report.content_hours, report.completed_at
    return ParkedOut(
        id=parked.id,
        provider_id=parked.provider_id,
        key_id=parked.key_id,
        identifier=Identifier(namespace=parked.namespace, value=person)
        if person is not None
        else None,
        course_id=course_id,
        content_hours=hours,
        completed_at=completed_at,
        parked_at=parked.parked_at,
        attempts=parked.attempts,
        resolved_at=parked.resolved_at,
        outcome=parked.outcome,
    )
