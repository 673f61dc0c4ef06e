"""Writing events: one statement for many, in the caller's transaction (SPEC §5)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.kit.ids import uuid7
from coursegate.kit.sql import insert_rows
from coursegate.models import Event
from coursegate.models.base import table_of

_EVENTS = table_of(Event)


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: str
    data: dict[str, Any]


async def record_events(
    session: AsyncSession, tenant_id: str, events: Sequence[NewEvent], at: datetime
) -> None:
    """Record facts with the change that made them true: they commit or vanish together."""
    await insert_rows(
        session,
        _EVENTS,
        [
            {
                "tenant_id": tenant_id,
                "id": uuid7(),
                "type": e.type,
                "occurred_at": at,
                "data": e.data,
            }
            for e in events
        ],
    )
