"""Reading a tenant's event log: the facts recorded, newest first."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.events.repository import EventRepository
from coursegate.kit.errors import ValidationFailed
from coursegate.kit.pagination import DEFAULT_LIMIT
from coursegate.models import Event
from coursegate.webhooks.catalogue import EVENT_TYPES


class EventService:
    def __init__(self, session: AsyncSession) -> None:
        self.repo = EventRepository(session)

    async def log(
        self,
        tenant_id: str,
        *,
        type_: str | None = None,
        since: datetime | None = None,
        before: tuple[datetime, uuid.UUID] | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Sequence[Event]:
        """The tenant's events newest first (by `occurred_at`, then id), `limit` at most
        after the one at `before` (its `(occurred_at, id)`); of one type of the catalogue
        when `type_` is given (another is refused on the field `type`), and from `since`
        on (inclusive) when given."""
        if type_ is not None and type_ not in EVENT_TYPES:
            raise ValidationFailed.field("type", "invalid", "not an event type of the catalogue")
        if since is not None and since.utcoffset() is None:
            raise ValidationFailed.field("since", "timezone_required", "an aware instant")
        return await self.repo.log(tenant_id, type_=type_, since=since, before=before, limit=limit)
