"""Webhook endpoints' JSON in and out."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from coursegate.kit.fields import StrictInput
from coursegate.kit.timefmt import Instant
from coursegate.webhooks.catalogue import ALL, EVENT_TYPES


def check_event_types(values: list[str]) -> list[str]:
    for value in values:
        if value != ALL and value not in EVENT_TYPES:
            raise PydanticCustomError("invalid", "not an event type of the catalogue, nor `*`")
    return list(dict.fromkeys(values))


EventTypes = Annotated[
    list[
        Annotated[str, Field(max_length=64), WithJsonSchema({"enum": [ALL, *sorted(EVENT_TYPES)]})]
    ],
    Field(min_length=1, max_length=64),
    AfterValidator(check_event_types),
]
Url = Annotated[str, Field(max_length=2048)]
Description = Annotated[str, Field(max_length=512)]


class LearningTimeSwitch(StrictInput):
    enabled: bool = False
    rollout_percent: int = Field(default=100, ge=0, le=100)


class Enrichments(StrictInput):
    learning_time: LearningTimeSwitch | None = None

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class EndpointCreate(StrictInput):
    url: Url
    event_types: EventTypes
    description: Description | None = None
    enrichments: Enrichments = Enrichments()


class EndpointUpdate(StrictInput):
    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enrichments: Enrichments | None = None
    enabled: bool | None = None


class EndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enrichments: dict[str, Any]
    enabled: bool
    disabled_reason: str | None
    failing_since: Instant | None
    previous_secret_expires_at: Instant | None
    created_at: Instant
    updated_at: Instant


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="the signing secret, shown this once")


class ReplayRequest(StrictInput):
    since: Instant


class RecoverRequest(StrictInput):
    since: Instant
    """Messages whose latest attempt at or after this instant failed are sent again."""


class Queued(BaseModel):
    queued: int
    """Messages queued for delivery, each keeping its original `webhook-id`."""


class ResendOut(BaseModel):
    delivery_id: uuid.UUID
    event_id: uuid.UUID


class AttemptOut(BaseModel):
    id: uuid.UUID
    delivery_id: uuid.UUID
    event_id: uuid.UUID
    attempt: int
    attempted_at: Instant
    outcome: str
    """`succeeded`, `failed`, or `outcome_unknown`: sent by a worker that died before
    it could record the answer (no status, latency or response)."""
    status_code: int | None
    latency_ms: int | None
    response_body: str | None
    error_class: str | None
