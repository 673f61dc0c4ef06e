"""The `datapass` kind (SPEC §7): validated authorization requests, read page by page.

Each entry of a page is sorted into one of three piles before anything is
written: an authorization to create (insert-or-ignore on its `public_id`, so
a re-run or an overlapping page creates nothing twice), skipped (another
definition's request, or one validated before the watermark), or rejected
with a reason (kept whole for `coursegate replay rejects`). Sorting is a pure
function so that a replay sorts a stored entry exactly as the run did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.connectors.http import PartnerClient, PermanentPartnerError
from coursegate.connectors.repository import ConnectorRepository
from coursegate.connectors.schemas import DatapassConfig
from coursegate.connectors.source import (
    Context,
    Held,
    Page,
    Rejected,
    Taken,
    instant_or_none,
    short_id,
)
from coursegate.events.outbox import NewEvent, record_events
from coursegate.kit.ids import uuid7
from coursegate.kit.timefmt import format_instant

PAGE_SIZE = 100
MAX_EXTERNAL_ID = 128
COLLECTION = "authorization_requests"


@dataclass(frozen=True, slots=True)
class NewAuthorization:
    external_id: str
    type: str
    validated_at: datetime | None
    organisation: Any
    data: Any


@dataclass(slots=True)
class Sorted:
    accepted: list[NewAuthorization] = field(default_factory=list)
    skipped: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    newest: datetime | None = None
    """The latest `last_validated_at` among every entry of the page that carried a
    readable one, accepted, skipped or rejected: a bad entry must not pin the watermark."""


def sort_entries(entries: Sequence[Any], definition_id: str, watermark: datetime | None) -> Sorted:
    """`watermark` None is a first run (or a replay): the whole backlog is wanted, and an
    entry without `last_validated_at` is taken; on an incremental run it cannot be
    placed against the watermark, so it is rejected rather than guessed."""
    result = Sorted()
    for entry in entries:
        if not isinstance(entry, dict):
            result.rejected.append(Rejected(entry, "the entry is not a JSON object", None))
            continue
        external_id = short_id(entry.get("public_id"), MAX_EXTERNAL_ID)
        raw_validated = entry.get("last_validated_at")
        validated_at = instant_or_none(raw_validated)
        if validated_at is not None and (result.newest is None or validated_at > result.newest):
            result.newest = validated_at
        if external_id is None:
            reason = f"public_id is missing or not a string of 1 to {MAX_EXTERNAL_ID} characters"
            result.rejected.append(Rejected(entry, reason, None))
            continue
        kind = entry.get("type")
        if not isinstance(kind, str) or not kind:
            result.rejected.append(Rejected(entry, "type is missing", external_id))
            continue
        if kind != definition_id or entry.get("state") != "validated":
            result.skipped += 1
            continue
        if raw_validated is not None and validated_at is None:
            reason = "last_validated_at is not an RFC 3339 instant with an offset"
            result.rejected.append(Rejected(entry, reason, external_id))
            continue
        if validated_at is None and watermark is not None:
            reason = "last_validated_at is missing on an incremental run"
            result.rejected.append(Rejected(entry, reason, external_id))
            continue
        if watermark is not None and validated_at is not None and validated_at < watermark:
            result.skipped += 1
            continue
        result.accepted.append(
            NewAuthorization(
                external_id=external_id,
                type=kind,
                validated_at=validated_at,
                organisation=entry.get("organisation"),
                data=entry.get("data"),
            )
        )
    return result


class DataPassSource:
    """The partner's one collection, read to the empty page that ends it, and sorted
    against the watermark here: the API has no filter on validation time."""

    collections = (COLLECTION,)

    def __init__(self, config: DatapassConfig, page_size: int = PAGE_SIZE) -> None:
        self.config = config
        self.page_size = page_size

    @property
    def token_url(self) -> str:
        return self.config.auth_url

    @property
    def scope(self) -> str | None:
        """DataPass grants what the client was registered for; none is asked."""
        return None

    async def settle(self, context: Context, *, force: bool) -> Held | None:
        """A DataPass run puts nothing off."""
        return None

    async def discard(self, context: Context) -> int:
        return 0

    async def pages(
        self, client: PartnerClient, since: Mapping[str, datetime | None]
    ) -> AsyncIterator[Page]:
        url = f"{self.config.api_base_url.rstrip('/')}/authorization_requests"
        offset = 0
        while True:
            page = await client.get_json(
                url, {"state": "validated", "limit": self.page_size, "offset": offset}
            )
            if not isinstance(page, list):
                raise PermanentPartnerError(
                    "invalid_response", "a page of authorization requests is not a JSON array"
                )
            if not page:
                return
            yield Page(COLLECTION, page)
            offset += len(page)

    async def take(self, context: Context, page: Page, since: datetime | None) -> Taken:
        sorted_page = sort_entries(page.entries, self.config.definition_id, since)
        created, events = await create_authorizations(
            context.session,
            context.tenant_id,
            context.connector_id,
            sorted_page.accepted,
            context.now,
        )
        await record_events(context.session, context.tenant_id, events, context.now)
        return Taken(
            created=created,
            skipped=sorted_page.skipped + len(sorted_page.accepted) - created,
            rejected=sorted_page.rejected,
            newest=sorted_page.newest,
        )


async def create_authorizations(
    session: AsyncSession,
    tenant_id: str,
    connector_id: str,
    accepted: Sequence[NewAuthorization],
    now: datetime,
) -> tuple[int, list[NewEvent]]:
    """Insert-or-ignore on the external id (the first of a page's duplicates wins); how
    many were new, and an `authorization.validated` event for each of them."""
    first: dict[str, NewAuthorization] = {}
    for entry in accepted:
        first.setdefault(entry.external_id, entry)
    rows = [
        {
            "tenant_id": tenant_id,
            "id": uuid7(),
            "connector_id": connector_id,
            "external_id": entry.external_id,
            "type": entry.type,
            "validated_at": entry.validated_at,
            "organisation": entry.organisation,
            "data": entry.data,
            "created_at": now,
        }
        for entry in first.values()
    ]
    created = await ConnectorRepository(session).insert_authorizations(rows)
    events = [
        NewEvent(
            "authorization.validated",
            {
                "authorization_id": str(row["id"]),
                "connector_id": connector_id,
                "external_id": row["external_id"],
                "type": row["type"],
                "validated_at": (
                    format_instant(row["validated_at"]) if row["validated_at"] else None
                ),
                "organisation": row["organisation"],
                "data": row["data"],
            },
        )
        for row in rows
        if row["external_id"] in created
    ]
    return len(created), events
