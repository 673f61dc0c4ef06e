"""RFC 3339 instants: inputs must carry an offset, outputs are UTC with `Z` and milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer
from pydantic_core import PydanticCustomError


def format_instant(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("refusing to format a naive datetime")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_instant(value: object) -> datetime:
    """Parse an RFC 3339 instant that carries an offset; normalise to UTC.

    The error types are the public constraint codes of the interface.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 64:
            raise PydanticCustomError("invalid", "not an RFC 3339 instant")
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise PydanticCustomError("invalid", "not an RFC 3339 instant") from None
        if "T" not in text.upper():
            raise PydanticCustomError("invalid", "not an RFC 3339 instant")
    else:
        raise PydanticCustomError("invalid_type", "expected an RFC 3339 string")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PydanticCustomError("timezone_required", "the instant must carry an offset")
    return parsed.astimezone(UTC)


Instant = Annotated[
    datetime,
    BeforeValidator(parse_instant),
    PlainSerializer(format_instant, return_type=str, when_used="json"),
]
"""An aware UTC instant: offset required on input, `…T…Z` with milliseconds on output."""
