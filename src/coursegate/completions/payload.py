"""The inbound completion payload: parsed from raw bytes, exact, and checked field by field.

Hours are read by the JSON parser straight into `Decimal` (never via float),
and every refusal names the field it belongs to with a public constraint code.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from coursegate.kit.errors import InvalidJson, ValidationFailed, validation_details
from coursegate.kit.fields import parse_hours, refuse_nul
from coursegate.kit.jsonbody import MAX_JSON_DEPTH, too_deep
from coursegate.kit.timefmt import parse_instant

MAX_CONTENT_HOURS = Decimal("1000")
FUTURE_TOLERANCE = timedelta(seconds=300)


def _text(max_length: int, *, optional: bool = False) -> BeforeValidator:
    def check(value: object) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise PydanticCustomError("invalid_type", "a string")
        if len(value) > max_length:
            raise PydanticCustomError("too_long", f"at most {max_length} characters")
        if not value.strip():
            raise PydanticCustomError("invalid", "must not be blank")
        return refuse_nul(value)  # type: ignore[no-any-return]

    return BeforeValidator(check)


def _hours(value: object) -> Decimal:
    return parse_hours(value, maximum=MAX_CONTENT_HOURS, allow_text=False)


class CompletionReport(BaseModel):
    """What a provider reported; unknown fields are ignored (SPEC §2)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    person_id: Annotated[str, _text(128)]
    state_code: Annotated[str, _text(32)]
    course_id: Annotated[str, _text(128)]
    course_name: Annotated[str | None, _text(512, optional=True)] = None
    content_hours: Annotated[Decimal, BeforeValidator(_hours)]
    completed_at: Annotated[datetime, BeforeValidator(parse_instant)]

    @field_validator("state_code")
    @classmethod
    def _same_jurisdiction(cls, value: str, info: ValidationInfo) -> str:
        expected = (info.context or {}).get("jurisdiction")
        if expected is not None and value != expected:
            raise PydanticCustomError("invalid_state_code", "not this program's jurisdiction")
        return value

    @field_validator("completed_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        now = (info.context or {}).get("now")
        if now is not None and value > now + FUTURE_TOLERANCE:
            raise PydanticCustomError("out_of_range", "a completion cannot be in the future")
        return value

    def canonical(self) -> str:
        """The content that makes two reports the same completion (SPEC §2): not the name."""
        return "\n".join(
            (
                self.person_id,
                self.state_code,
                self.course_id,
                f"{self.content_hours:.2f}",
                self.completed_at.isoformat(),
            )
        )

    def digest(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_report(
    body: bytes, *, jurisdiction: str | None, now: datetime | None
) -> CompletionReport:
    if too_deep(body):
        raise InvalidJson(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(body, parse_float=Decimal, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidJson("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValidationFailed.field("body", "invalid_type", "a JSON object")
    try:
        return CompletionReport.model_validate(
            data, context={"jurisdiction": jurisdiction, "now": now}
        )
    except ValidationError as exc:
        raise ValidationFailed(details=validation_details(exc.errors())) from None
