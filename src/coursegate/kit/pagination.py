"""The list envelope `{"data": [...], "next_cursor": ...}` with `limit` and an opaque cursor."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from coursegate.kit.errors import ValidationFailed

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

T = TypeVar("T")
R = TypeVar("R")


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    after: dict[str, Any] | None
    """The decoded position of the last row of the previous page, or None for the first."""


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationFailed.field("cursor", "invalid", "not a cursor this API issued") from None
    if not isinstance(value, dict):
        raise ValidationFailed.field("cursor", "invalid", "not a cursor this API issued")
    return value


CURSOR_PATTERN = "^[A-Za-z0-9_-]{1,512}$"
"""The shape of every cursor (unpadded base64url); only one this API issued names a position."""


def page_request(
    limit: int = Query(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(default=None, pattern=CURSOR_PATTERN),
) -> PageRequest:
    """The list parameters of every list endpoint; a malformed one is a 400 with the public
    constraint codes (`invalid_type`, `out_of_range`, `invalid`)."""
    return PageRequest(limit=limit, after=decode_cursor(cursor) if cursor else None)


def build_page(
    rows: Sequence[R],
    request: PageRequest,
    position: Callable[[R], dict[str, Any]],
    render: Callable[[R], T],
) -> Page[T]:
    """Turn `limit + 1` fetched rows into a page: the extra row only says another page exists."""
    more = len(rows) > request.limit
    kept = rows[: request.limit]
    next_cursor = encode_cursor(position(kept[-1])) if more and kept else None
    return Page[T](data=[render(r) for r in kept], next_cursor=next_cursor)


def cursor_uuid(after: dict[str, Any] | None, key: str = "id") -> uuid.UUID | None:
    """The UUID position stored in a cursor under `key`."""
    if after is None:
        return None
    try:
        return uuid.UUID(str(after[key]))
    except (KeyError, ValueError):
        raise ValidationFailed.field("cursor", "invalid", "not a cursor this API issued") from None


def cursor_text(after: dict[str, Any] | None, key: str = "id") -> str | None:
    """The text position stored in a cursor under `key` (slugs)."""
    if after is None:
        return None
    value = after.get(key)
    if not isinstance(value, str):
        raise ValidationFailed.field("cursor", "invalid", "not a cursor this API issued")
    return value
