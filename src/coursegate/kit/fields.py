"""Reusable input field types, each failing with a public constraint code."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from coursegate.kit.errors import ValidationFailed

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def check_timezone(value: str) -> str:
    if len(value) > 64 or value != value.strip() or not value:
        raise PydanticCustomError("invalid", "not an IANA timezone name")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError("invalid", "not an IANA timezone name") from None
    return value


def check_email(value: str) -> str:
    if len(value) > 320:
        raise PydanticCustomError("too_long", "at most 320 characters")
    if not _EMAIL.fullmatch(value):
        raise PydanticCustomError("invalid", "not an email address")
    return value


TimezoneName = Annotated[str, AfterValidator(check_timezone)]
Email = Annotated[str, AfterValidator(check_email)]


class StrictInput(BaseModel):
    """Admin inputs refuse unknown fields, so a typo is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_field(check: Callable[[str], str], field: str, value: str) -> str:
    """Run a field check outside a model (CLI arguments), as a 400 with the same codes."""
    try:
        return check(value)
    except PydanticCustomError as exc:
        raise ValidationFailed.field(field, exc.type, exc.message()) from None
