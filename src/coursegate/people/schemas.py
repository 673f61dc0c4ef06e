"""People's JSON in and out."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from coursegate.kit.fields import Email, Namespace, StrictInput
from coursegate.kit.timefmt import Instant


class Identifier(StrictInput):
    namespace: Namespace
    value: str = Field(min_length=1, max_length=256)


class PersonCreate(StrictInput):
    identifiers: list[Identifier] = Field(min_length=1, max_length=20)
    name: str | None = Field(default=None, min_length=1, max_length=256)
    email: Email | None = None


class PersonOut(BaseModel):
    id: uuid.UUID
    name: str | None
    email: str | None
    identifiers: list[Identifier]
    created_at: Instant
