"""Reusable input field types, each failing with a public constraint code."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from coursegate.kit.errors import ValidationFailed, validation_details

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


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: dict[str, object]) -> M:
    """Input from outside the API (CLI arguments, console forms) goes through the API's own
    input model, so all of them refuse the same things alike, with the same codes."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(details=validation_details(exc.errors())) from None


def check_field(check: Callable[[str], str], field: str, value: str) -> str:
    """Run a field check outside a model (CLI arguments), as a 400 with the same codes."""
    try:
        return check(value)
    except PydanticCustomError as exc:
        raise ValidationFailed.field(field, exc.type, exc.message()) from None


HOURS_PLACES = 2


def parse_hours(value: object, *, maximum: Decimal, allow_text: bool) -> Decimal:
    """An exact, positive number of hours with at most two decimals.

    Partner payloads must send a JSON number, read as `Decimal` by the JSON
    parser itself (never via float); admin inputs may also send it as text
    (`"6"`). Each failure carries the public constraint code.
    """
    if isinstance(value, bool):
        raise PydanticCustomError("invalid_type", "a number of hours")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float) and allow_text:
        number = Decimal(repr(value))
    elif isinstance(value, str) and allow_text:
        try:
            number = Decimal(value.strip())
        except ArithmeticError:
            raise PydanticCustomError("invalid_type", "a number of hours") from None
    else:
        raise PydanticCustomError("invalid_type", "a number of hours")
    if not number.is_finite():
        raise PydanticCustomError("invalid_type", "a finite number of hours")
    if number <= 0:
        raise PydanticCustomError("must_be_positive", "must be greater than 0")
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -HOURS_PLACES:
        raise PydanticCustomError("too_many_decimal_places", "at most 2 decimal places")
    if number > maximum:
        raise PydanticCustomError("out_of_range", f"at most {maximum}")
    return number.quantize(Decimal("0.01"))


def admin_hours(maximum: Decimal) -> BeforeValidator:
    """Hours in an admin input: a number or a numeric string."""
    return BeforeValidator(lambda v: parse_hours(v, maximum=maximum, allow_text=True))


def format_hours(value: Decimal) -> str:
    """Hours in JSON: a string with two decimals (`"10.50"`)."""
    return f"{value.quantize(Decimal('0.01'))}"


HoursText = Annotated[Decimal, PlainSerializer(format_hours, return_type=str)]
"""Hours on the way out, always as a two-decimal string."""

NAMESPACE_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def check_namespace(value: str) -> str:
    if not NAMESPACE_PATTERN.fullmatch(value):
        raise PydanticCustomError("invalid", "must match [a-z0-9][a-z0-9_.-]{0,63}")
    return value


Namespace = Annotated[str, AfterValidator(check_namespace)]
