"""The `datapass` kind (SPEC §7): validated authorization requests, read page by page.

Each entry of a page is sorted into one of three piles before anything is
written: an authorization to create (insert-or-ignore on its `public_id`, so
a re-run or an overlapping page creates nothing twice), skipped (another
definition's request, or one validated before the watermark), or rejected
with a reason (kept whole for `coursegate replay rejects`). Sorting is a pure
function so that a replay sorts a stored entry exactly as the run did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic_core import PydanticCustomError

from coursegate.connectors.http import PartnerClient, PermanentPartnerError
from coursegate.connectors.schemas import DatapassConfig
from coursegate.kit.timefmt import parse_instant

PAGE_SIZE = 100
MAX_EXTERNAL_ID = 128


@dataclass(frozen=True, slots=True)
class NewAuthorization:
    external_id: str
    type: str
    validated_at: datetime | None
    organisation: Any
    data: Any


@dataclass(frozen=True, slots=True)
class Rejected:
    raw: Any
    reason: str
    external_id: str | None


@dataclass(slots=True)
class Sorted:
    accepted: list[NewAuthorization] = field(default_factory=list)
    skipped: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    newest: datetime | None = None
    """The latest `last_validated_at` among every entry of the page that carried a
    readable one, accepted, skipped or rejected: a bad entry must not pin the watermark."""


def _instant(value: Any) -> datetime | None:
    """An RFC 3339 instant with an offset, read as the API reads its own inputs; or None."""
    if not isinstance(value, str):
        return None
    try:
        return parse_instant(value)
    except PydanticCustomError:
        return None


def _external_id(entry: dict[str, Any]) -> str | None:
    value = entry.get("public_id")
    if isinstance(value, str) and 0 < len(value) <= MAX_EXTERNAL_ID:
        return value
    return None


def sort_entries(entries: Sequence[Any], definition_id: str, watermark: datetime | None) -> Sorted:
    """`watermark` None is a first run (or a replay): the whole backlog is wanted, and an
    entry without `last_validated_at` is taken; on an incremental run it cannot be
    placed against the watermark, so it is rejected rather than guessed."""
    result = Sorted()
    for entry in entries:
        if not isinstance(entry, dict):
            result.rejected.append(Rejected(entry, "the entry is not a JSON object", None))
            continue
        external_id = _external_id(entry)
        raw_validated = entry.get("last_validated_at")
        validated_at = _instant(raw_validated)
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
    """The partner's pages, read to the empty one that ends them."""

    def __init__(self, config: DatapassConfig, page_size: int = PAGE_SIZE) -> None:
        self.config = config
        self.page_size = page_size

    @property
    def token_url(self) -> str:
        return self.config.auth_url

    async def pages(self, client: PartnerClient) -> AsyncIterator[list[Any]]:
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
            yield page
            offset += len(page)

    def sort(self, entries: Sequence[Any], watermark: datetime | None) -> Sorted:
        return sort_entries(entries, self.config.definition_id, watermark)
