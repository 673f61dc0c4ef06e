"""The event log's JSON out."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel

from coursegate.kit.timefmt import Instant
from coursegate.models import Event


class EventOut(BaseModel):
    id: uuid.UUID
    """Also the `webhook-id` of every message that carries the event."""
    type: str
    occurred_at: Instant
    data: dict[str, Any]
    """As delivered to webhook endpoints (SPEC §5), without any enrichment."""


def event_out(event: Event) -> EventOut:
    return EventOut(id=event.id, type=event.type, occurred_at=event.occurred_at, data=event.data)
