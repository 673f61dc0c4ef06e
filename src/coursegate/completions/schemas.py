"""Completions' and the inbound audit's JSON out."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

from coursegate.kit.fields import HoursText
from coursegate.kit.timefmt import Instant


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
