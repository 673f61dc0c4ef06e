"""Reusable input field types, each failing with a public constraint code."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
    field_validator,
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


TimezoneName = Annotated[
    str,
    AfterValidator(check_timezone),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 64,
            "pattern": "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$",
            "description": "an IANA timezone name, e.g. America/Denver",
        }
    ),
]
Email = Annotated[
    str,
    AfterValidator(check_email),
    WithJsonSchema({"type": "string", "maxLength": 320, "pattern": f"^{_EMAIL.pattern}$"}),
]


def refuse_nul(value: Any) -> Any:
    """No text holds U+0000: PostgreSQL cannot store it, so it would fail as a 500 there while
    SQLite kept it; refused alike on both as the caller's mistake."""
    if isinstance(value, str):
        if "\x00" in value:
            raise PydanticCustomError("invalid", "must not contain the NUL character")
    elif isinstance(value, list | tuple):
        for item in value:
            refuse_nul(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key)
            refuse_nul(item)
    return value


class StrictInput(BaseModel):
    """Admin inputs refuse unknown fields, so a typo is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return refuse_nul(value)


def not_nullable(*fields: str) -> Callable[[dict[str, Any]], None]:
    """A model's `json_schema_extra` for patch fields that may be left out but not sent as
    null: `X | None = None` reads "nullable" to JSON Schema, which is not what is accepted."""

    def edit(schema: dict[str, Any]) -> None:
        for name in fields:
            prop = schema["properties"][name]
            kept = [s for s in prop.pop("anyOf") if s != {"type": "null"}]
            prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
            prop.pop("default", None)

    return edit


def schema_edits(
    *edits: Callable[[dict[str, Any]], None],
) -> Callable[[dict[str, Any]], None]:
    """Several `json_schema_extra` edits as one."""

    def edit(schema: dict[str, Any]) -> None:
        for one in edits:
            one(schema)

    return edit


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


def admin_hours_schema(maximum: Decimal) -> WithJsonSchema:
    """What `admin_hours` accepts, as far as JSON Schema can say it: a positive number in
    hundredths, or the same as text (whole digits kept below the maximum's, so any text the
    pattern allows is accepted)."""
    digits = len(str(int(maximum))) - 1
    text = rf"^0*([1-9][0-9]{{0,{digits - 1}}}(\.[0-9]{{1,2}})?|0?\.([0-9][1-9]|[1-9][0-9]?))$"
    return WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": int(maximum),
                    "multipleOf": 0.01,
                },
                {"type": "string", "pattern": text},
            ]
        }
    )


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


NAMESPACE_SCHEMA = {"type": "string", "pattern": f"^{NAMESPACE_PATTERN.pattern}$"}
Namespace = Annotated[str, AfterValidator(check_namespace), WithJsonSchema(NAMESPACE_SCHEMA)]
