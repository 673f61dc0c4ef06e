"""Providers' JSON in and out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from coursegate.kit.fields import StrictInput
from coursegate.kit.ids import Slug
from coursegate.kit.secrets import SecretRef
from coursegate.kit.timefmt import Instant

Scheme = Literal["hmac-authorization", "standard-webhooks"]


class KeyCreate(StrictInput):
    key_id: Slug
    secret_ref: SecretRef | None = Field(
        default=None, description="`env:NAME` or `file:/path`; omit to have a secret generated"
    )


class ProviderCreate(StrictInput):
    id: Slug
    program_id: Slug
    scheme: Scheme
    keys: list[KeyCreate] = Field(min_length=1, max_length=10)


class KeyOut(BaseModel):
    key_id: str
    secret_ref: str | None
    generated: bool
    created_at: Instant
    retired_at: Instant | None


class KeyCreated(KeyOut):
    secret: str | None = Field(default=None, description="a generated secret, shown this once")


class ProviderOut(BaseModel):
    id: str
    program_id: str
    scheme: str
    inbound_path: str
    keys: list[KeyOut]
    created_at: Instant


class ProviderCreated(ProviderOut):
    keys: list[KeyCreated]  # type: ignore[assignment]
