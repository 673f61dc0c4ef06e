"""Programs' JSON in and out."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from coursegate.kit.fields import HoursText, Namespace, StrictInput, admin_hours, admin_hours_schema
from coursegate.kit.ids import Slug
from coursegate.kit.timefmt import Instant

_JURISDICTION = re.compile(r"[A-Z]{2}(_[A-Z0-9]{1,12})?")


def _check_jurisdiction(value: str) -> str:
    if not _JURISDICTION.fullmatch(value):
        raise PydanticCustomError("invalid", "a code such as US_CO")
    return value


MAX_HOURS_PER_CREDIT = Decimal("10000")


class ProgramCreate(StrictInput):
    id: Slug
    name: str = Field(min_length=1, max_length=256)
    jurisdiction: Annotated[
        str,
        AfterValidator(_check_jurisdiction),
        WithJsonSchema({"type": "string", "pattern": f"^{_JURISDICTION.pattern}$"}),
    ]
    hours_per_credit: Annotated[
        Decimal, admin_hours(MAX_HOURS_PER_CREDIT), admin_hours_schema(MAX_HOURS_PER_CREDIT)
    ]
    identifier_namespace: Namespace


class ProgramOut(BaseModel):
    id: str
    name: str
    jurisdiction: str
    hours_per_credit: HoursText
    identifier_namespace: str
    created_at: Instant
