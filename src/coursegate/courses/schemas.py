"""Courses' and seat orders' JSON in and out."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, field_validator
from pydantic_core import PydanticCustomError

from coursegate.kit.fields import StrictInput, not_nullable
from coursegate.kit.ids import Slug
from coursegate.kit.timefmt import Instant

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_calendar_date(value: object) -> date:
    """A calendar date as `YYYY-MM-DD` text and nothing else: a number or an instant
    is not a date (pydantic alone would take a unix timestamp)."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("invalid_type", "a date as YYYY-MM-DD")
    if not _ISO_DATE.fullmatch(value):
        raise PydanticCustomError("invalid", "a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("invalid", "not a calendar date") from None


CalendarDate = Annotated[
    date,
    BeforeValidator(parse_calendar_date),
    PlainSerializer(date.isoformat, return_type=str, when_used="json"),
]
"""A date in and out as `YYYY-MM-DD`."""

AccessPeriodDays = Annotated[int, Field(strict=True, ge=1, le=3650)]
CertificateValidityDays = Annotated[int, Field(strict=True, ge=1, le=36500)]
CourseName = Annotated[str, Field(min_length=1, max_length=256)]
ExternalCourseId = Annotated[str, Field(min_length=1, max_length=128)]
ExternalIds = Annotated[dict[str, ExternalCourseId], Field(max_length=50)]
"""`{provider_id: the provider's course id}`; unknown providers are refused by the service,
except `ROSTER_KEY`."""
ROSTER_KEY = "oneroster"
"""The `external_ids` key naming the OneRoster class a course is (SPEC §4): a roster is
not a provider, and no provider may take this id."""


class CourseCreate(StrictInput):
    id: Slug
    name: CourseName
    program_id: Slug | None = None
    start_date: CalendarDate
    last_drop_date: CalendarDate
    end_date: CalendarDate
    access_period_days: AccessPeriodDays
    certificate_validity_days: CertificateValidityDays | None = None
    external_ids: ExternalIds = Field(default_factory=dict)


# Fields a PATCH may leave out but may not set to null: the course needs a value.
_REQUIRED_ON_COURSE = (
    "name",
    "start_date",
    "last_drop_date",
    "end_date",
    "access_period_days",
    "external_ids",
)


class CoursePatch(StrictInput):
    """Only the fields present change. `program_id` and `certificate_validity_days`
    may be set to null to clear them; `external_ids` replaces the whole mapping."""

    model_config = ConfigDict(json_schema_extra=not_nullable(*_REQUIRED_ON_COURSE))

    name: CourseName | None = None
    program_id: Slug | None = None
    start_date: CalendarDate | None = None
    last_drop_date: CalendarDate | None = None
    end_date: CalendarDate | None = None
    access_period_days: AccessPeriodDays | None = None
    certificate_validity_days: CertificateValidityDays | None = None
    external_ids: ExternalIds | None = None

    @field_validator(*_REQUIRED_ON_COURSE, mode="after")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for values the caller sent (defaults are not validated).
        if value is None:
            raise PydanticCustomError("invalid_type", "may be left out, not null")
        return value


class CourseOut(BaseModel):
    id: str
    name: str
    program_id: str | None
    start_date: CalendarDate
    last_drop_date: CalendarDate
    end_date: CalendarDate
    access_period_days: int
    certificate_validity_days: int | None
    external_ids: dict[str, str]
    status: str
    created_at: Instant
    updated_at: Instant


class SeatOrderCreate(StrictInput):
    quantity: Annotated[int, Field(strict=True, ge=1, le=10000)]
    order_ref: Annotated[str, Field(min_length=1, max_length=128)]


class SeatOrderOut(BaseModel):
    order_ref: str
    course_id: str
    quantity: int
    created_at: Instant


class SeatCounts(BaseModel):
    available: int
    reserved: int
    assigned: int
    spent: int
    rolled_back: int
    total: int
