"""Identifiers: UUIDv7 for ids the system makes, slugs for ids callers choose."""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from coursegate.kit.errors import NotFound, ValidationFailed

SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
SLUG_SCHEMA = {"type": "string", "pattern": f"^{SLUG_PATTERN.pattern}$"}
UUID_SCHEMA = {
    "type": "string",
    "pattern": "^[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}$",
}
"""What `uuid.UUID` reads: 32 hex digits, hyphens optional (a `format` alone would not say)."""


_lock = threading.Lock()
_last_ms = -1
_counter = 0
_COUNTER_MAX = (1 << 12) - 1


def uuid7(unix_ms: int | None = None) -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7), monotonic within this process.

    Python 3.11 has no uuid7. Ids ordered by creation are what make them usable
    as pagination cursors and as the order of events written in one
    transaction, so ids made in the same millisecond use the 12-bit `rand_a`
    field as a counter (RFC 9562, method 1) instead of random bits.
    """
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
        if ms <= _last_ms and unix_ms is None:
            ms = _last_ms
            _counter += 1
            if _counter > _COUNTER_MAX:
                ms += 1
                _counter = 0
        else:
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count up
        _last_ms = max(_last_ms, ms)
        counter = _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= counter << 64  # rand_a used as a counter
    value |= 0b10 << 62  # variant
    value |= rand_b
    return uuid.UUID(int=value)


def id_floor(at: datetime) -> uuid.UUID:
    """The smallest time-ordered id made at or after `at`: a time bound on a primary key."""
    unix_ms = int(at.timestamp() * 1000)
    return uuid.UUID(int=(unix_ms << 80) | (0x7 << 76) | (0b10 << 62))


def id_instant(value: uuid.UUID) -> datetime:
    """When a time-ordered id was made, to the millisecond."""
    return datetime.fromtimestamp((value.int >> 80) / 1000, UTC)


def is_slug(value: str) -> bool:
    return SLUG_PATTERN.fullmatch(value) is not None


def _check_slug(value: str) -> str:
    if not is_slug(value):
        raise PydanticCustomError("invalid", "must match [a-z0-9][a-z0-9_-]{0,62}")
    return value


Slug = Annotated[str, AfterValidator(_check_slug), WithJsonSchema(SLUG_SCHEMA)]
"""A caller-chosen id, validated with the `invalid` constraint code."""

SlugPath = Annotated[str, Path(json_schema_extra=SLUG_SCHEMA)]
"""A caller-chosen id in a URL path. Any other text names no object: a 404, like an unknown id."""

UuidPath = Annotated[str, Path(json_schema_extra=UUID_SCHEMA)]
"""A system-made id in a URL path, read with `path_uuid` (a 404 if malformed)."""


def query_uuid(name: str, value: str | None) -> uuid.UUID | None:
    """An id given as a list filter; a malformed one is the caller's mistake, a 400."""
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed.field(name, "invalid", "not an id") from None


def path_uuid(value: str) -> uuid.UUID:
    """An id from a URL path; a malformed one names no object, so it is a 404 like any unknown id."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound() from None
