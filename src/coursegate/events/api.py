"""Routes: the tenant's event log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic_core import PydanticCustomError

from coursegate.events.schemas import EventOut, event_out
from coursegate.events.service import EventService
from coursegate.kit.errors import ValidationFailed
from coursegate.kit.pagination import Page, PageRequest, build_page, cursor_uuid, page_request
from coursegate.kit.timefmt import parse_instant
from coursegate.models import Event
from coursegate.web import CurrentPrincipal, Session
from coursegate.webhooks.catalogue import EVENT_TYPES

router = APIRouter(prefix="/v1/events", tags=["events"])


def _position(event: Event) -> dict[str, Any]:
    return {"at": event.occurred_at.isoformat(), "id": str(event.id)}


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except PydanticCustomError as exc:
        raise ValidationFailed.field("since", exc.type, exc.message()) from None


def _before(after: dict[str, Any] | None) -> tuple[datetime, uuid.UUID] | None:
    """The `(occurred_at, id)` a cursor of this list holds."""
    event_id = cursor_uuid(after)
    if after is None or event_id is None:
        return None
    try:
        at = datetime.fromisoformat(str(after["at"]))
    except (KeyError, ValueError):
        raise ValidationFailed.field("cursor", "invalid", "not a cursor this API issued") from None
    if at.utcoffset() is None:
        raise ValidationFailed.field("cursor", "invalid", "not a cursor this API issued")
    return at, event_id


@router.get("")
async def list_events(
    who: CurrentPrincipal,
    session: Session,
    page: PageRequest = Depends(page_request),
    type_: str | None = Query(
        default=None, alias="type", max_length=64, json_schema_extra={"enum": sorted(EVENT_TYPES)}
    ),
    since: str | None = Query(
        default=None,
        description="an RFC 3339 instant with its offset",
        json_schema_extra={"format": "date-time"},
    ),
) -> Page[EventOut]:
    """Newest first; `type` is one type of the catalogue, `since` includes that instant."""
    rows = await EventService(session).log(
        who.tenant_id,
        type_=type_,
        since=_since(since),
        before=_before(page.after),
        limit=page.limit + 1,
    )
    return build_page(rows, page, _position, event_out)
