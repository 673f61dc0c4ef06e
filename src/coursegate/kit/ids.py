"""Identifiers: UUIDv7 for ids the system makes, slugs for ids callers choose."""

from __future__ import annotations

import os
import re
import time
import uuid
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from coursegate.kit.errors import NotFound

SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def uuid7(unix_ms: int | None = None) -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7).

    Python 3.11 has no uuid7; ordering by id then follows creation time, which
    is what makes ids usable as pagination cursors and index-friendly on
    PostgreSQL's B-trees.
    """
    ms = time.time_ns() // 1_000_000 if unix_ms is None else unix_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return uuid.UUID(int=value)


def is_slug(value: str) -> bool:
    return SLUG_PATTERN.fullmatch(value) is not None


def _check_slug(value: str) -> str:
    if not is_slug(value):
        raise PydanticCustomError("invalid", "must match [a-z0-9][a-z0-9_-]{0,62}")
    return value


Slug = Annotated[str, AfterValidator(_check_slug)]
"""A caller-chosen id, validated with the `invalid` constraint code."""


def path_uuid(value: str) -> uuid.UUID:
    """An id from a URL path; a malformed one names no object, so it is a 404 like any unknown id."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound() from None
