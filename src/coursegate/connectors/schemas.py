"""Connectors' JSON in and out, the per-kind configurations and the cron check."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from coursegate.kit.fields import StrictInput, not_nullable, schema_edits
from coursegate.kit.ids import Slug
from coursegate.kit.secrets import SecretRef
from coursegate.kit.timefmt import Instant

DEFAULT_SCHEDULE = "0 1 * * *"
MAX_SCHEDULE_LENGTH = 64

# (lowest, highest) for minute, hour, day of month, month, day of week (0 = Sunday).
_CRON_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
_NUMBER = re.compile(r"[0-9]{1,2}")


def _cron_number(text: str, lowest: int, highest: int) -> int:
    if not _NUMBER.fullmatch(text):
        raise ValueError(text)
    value = int(text)
    if not lowest <= value <= highest:
        raise ValueError(text)
    return value


def _check_cron_item(item: str, lowest: int, highest: int) -> None:
    """`*`, `*/n`, `n` or `a-b`, inside the field's bounds."""
    if item == "*":
        return
    if item.startswith("*/"):
        if not _NUMBER.fullmatch(item[2:]) or not 1 <= int(item[2:]) <= highest:
            raise ValueError(item)
        return
    start, sep, end = item.partition("-")
    if not sep:
        _cron_number(item, lowest, highest)
    elif _cron_number(start, lowest, highest) > _cron_number(end, lowest, highest):
        raise ValueError(item)


def check_cron(value: str) -> str:
    """A five-field cron expression (minute hour day month weekday, UTC), fields
    separated by single spaces; each field is `*`, `*/n`, a number, a range `a-b`
    or a comma list of numbers and ranges. Names (`MON`) and `?`, `L`, `#` are refused."""
    message = "a five-field cron expression such as 0 1 * * *"
    if len(value) > MAX_SCHEDULE_LENGTH:
        raise PydanticCustomError("too_long", f"at most {MAX_SCHEDULE_LENGTH} characters")
    fields = value.split(" ")
    if len(fields) != len(_CRON_BOUNDS):
        raise PydanticCustomError("invalid", message)
    for field, (lowest, highest) in zip(fields, _CRON_BOUNDS, strict=True):
        items = field.split(",")
        if len(items) > 1 and any(i == "*" or i.startswith("*/") for i in items):
            raise PydanticCustomError("invalid", message)
        try:
            for item in items:
                _check_cron_item(item, lowest, highest)
        except ValueError:
            raise PydanticCustomError("invalid", message) from None
    return value


def _cron_values(field: str, lowest: int, highest: int) -> set[int]:
    values: set[int] = set()
    for item in field.split(","):
        if item == "*":
            values.update(range(lowest, highest + 1))
        elif item.startswith("*/"):
            values.update(range(lowest, highest + 1, int(item[2:])))
        else:
            start, _, end = item.partition("-")
            values.update(range(int(start), int(end or start) + 1))
    return values


def cron_matches(expression: str, at: datetime) -> bool:
    """Whether a checked expression fires in this UTC minute. As in cron, when both the
    day of month and the weekday are restricted (neither starts with `*`), either one
    matching is enough; otherwise both must."""
    fields = expression.split(" ")
    minute, hour, day, month, weekday = (
        _cron_values(field, lowest, highest)
        for field, (lowest, highest) in zip(fields, _CRON_BOUNDS, strict=True)
    )
    at = at.astimezone(UTC)
    day_hit = at.day in day
    weekday_hit = (at.weekday() + 1) % 7 in weekday  # cron counts from Sunday = 0
    if fields[2].startswith("*") or fields[4].startswith("*"):
        days = day_hit and weekday_hit
    else:
        days = day_hit or weekday_hit
    return at.minute in minute and at.hour in hour and at.month in month and days


Schedule = Annotated[str, AfterValidator(check_cron)]
PartnerUrl = Annotated[str, Field(min_length=1, max_length=2048)]
"""Shape and target are checked by the service (it knows whether private targets are allowed)."""
ClientId = Annotated[str, Field(min_length=1, max_length=256)]
SourcedId = Annotated[str, Field(min_length=1, max_length=128)]


class DatapassConfig(StrictInput):
    """SPEC §7: the DataPass partner API."""

    auth_url: PartnerUrl
    api_base_url: PartnerUrl
    client_id: ClientId
    client_secret_ref: SecretRef
    definition_id: Annotated[str, Field(min_length=1, max_length=128)]


ROSTER_CORE_READONLY = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly"
"""The narrowest of the 1.2 rostering scopes that covers users, classes and enrollments."""
ROSTER_PATHS = {"v1p2": "/ims/oneroster/rostering/v1p2", "v1p1": "/ims/oneroster/v1p1"}
OAuthScope = Annotated[
    str, Field(min_length=1, max_length=1024, pattern=r"^[!#-\[\]-~]+( [!#-\[\]-~]+)*$")
]
"""RFC 6749's scope: tokens of printable ASCII but `"` and backslash, one space apart."""


class OneRosterConfig(StrictInput):
    """A OneRoster 1.2 rostering API; `class_map` maps a class `sourcedId` to a course.

    `api_base_url` is the server (`https://sis.example`), to which the version's path is
    added (`/ims/oneroster/rostering/v1p2`, or 1.1's `/ims/oneroster/v1p1` for providers
    that serve the 1.2 model there), or already ends with one of those paths."""

    token_url: PartnerUrl
    api_base_url: PartnerUrl
    client_id: ClientId
    client_secret_ref: SecretRef
    class_map: Annotated[dict[SourcedId, Slug], Field(max_length=1000)] = Field(
        default_factory=dict
    )
    scope: OAuthScope = ROSTER_CORE_READONLY
    hold_share: float = Field(default=0.5, gt=0, le=1)
    """A run that would cancel more than this share of a class's, or of all, the live
    enrollments the connector made cancels none and waits for a person."""
    hold_min: int = Field(default=10, ge=1, le=100_000)
    """…when it would cancel at least this many: a student leaving a class of three is
    an ordinary day, not a glitch."""
    version: Literal["v1p2", "v1p1"] = Field(default="v1p2", validate_default=True)

    @field_validator("version")
    @classmethod
    def _one_version(cls, version: str, info: ValidationInfo) -> str:
        base = str(info.data.get("api_base_url", "")).rstrip("/")
        for other, path in ROSTER_PATHS.items():
            if base.endswith(path) and other != version:
                raise PydanticCustomError(
                    "invalid", f"api_base_url ends with the {other} path: version must be {other}"
                )
        return version

    @property
    def collections_url(self) -> str:
        base = self.api_base_url.rstrip("/")
        path = ROSTER_PATHS[self.version]
        return base if base.endswith(path) else base + path


CONFIG_MODELS: dict[str, type[StrictInput]] = {
    "datapass": DatapassConfig,
    "oneroster": OneRosterConfig,
}
URL_FIELDS: dict[str, tuple[str, ...]] = {
    "datapass": ("auth_url", "api_base_url"),
    "oneroster": ("token_url", "api_base_url"),
}

# The configuration is checked against its kind by the service; here it is a JSON object.
RawConfig = Annotated[dict[str, Any], Field(max_length=50)]


def _config_by_kind(schema: dict[str, Any]) -> None:
    """The body's `config` is checked against the model of its `kind` by the service; the
    description says so with one alternative per kind."""
    schema["oneOf"] = [
        {
            "properties": {
                "kind": {"const": kind},
                "config": model.model_json_schema(),
            }
        }
        for kind, model in sorted(CONFIG_MODELS.items())
    ]


def _config_of_some_kind(schema: dict[str, Any]) -> None:
    """A patch's `config` is checked against the model of the connector's kind."""
    schema["properties"]["config"] = {
        "anyOf": [model.model_json_schema() for _, model in sorted(CONFIG_MODELS.items())]
    }


class ConnectorCreate(StrictInput):
    model_config = ConfigDict(json_schema_extra=_config_by_kind)

    id: Slug
    kind: Literal["datapass", "oneroster"]
    schedule: Schedule = DEFAULT_SCHEDULE
    config: RawConfig


class ConnectorPatch(StrictInput):
    """Only the fields present change; `config` is replaced whole and checked again."""

    model_config = ConfigDict(
        json_schema_extra=schema_edits(
            not_nullable("schedule", "config", "enabled"), _config_of_some_kind
        )
    )

    schedule: Schedule | None = None
    config: RawConfig | None = None
    enabled: Annotated[bool, Field(strict=True)] | None = None

    @field_validator("schedule", "config", "enabled", mode="after")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Runs only for values the caller sent (defaults are not validated).
        if value is None:
            raise PydanticCustomError("invalid_type", "may be left out, not null")
        return value


class RunOut(BaseModel):
    id: uuid.UUID
    connector_id: str
    trigger: str
    status: str
    since: Instant | None
    dry_run: bool
    started_at: Instant
    ended_at: Instant | None
    pages: int
    created: int
    skipped: int
    rejected: int
    warnings: int
    watermark: Instant | None
    error_class: str | None
    message: str | None


class ConnectorOut(BaseModel):
    id: str
    kind: str
    schedule: str
    config: dict[str, Any]
    enabled: bool
    watermark: Instant | None
    watermarks: dict[str, Instant]
    """Per collection of the partner's (one for `datapass`; `users`, `classes` and
    `enrollments` for `oneroster`); `watermark` is the greatest."""
    last_run: RunOut | None
    created_at: Instant
    updated_at: Instant


class RejectOut(BaseModel):
    id: uuid.UUID
    connector_id: str
    run_id: uuid.UUID
    external_id: str | None
    reason: str
    raw: Any
    created_at: Instant
    replayed_at: Instant | None
    resolved_at: Instant | None


class AuthorizationOut(BaseModel):
    id: uuid.UUID
    connector_id: str
    external_id: str
    type: str
    validated_at: Instant | None
    organisation: Any
    data: Any
    created_at: Instant
