"""Tenancy's JSON in and out."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from coursegate.kit.fields import Email, StrictInput, TimezoneName, not_nullable
from coursegate.kit.timefmt import Instant


class TenantOut(BaseModel):
    id: str
    timezone: str
    contact_email: str | None
    created_at: Instant
    updated_at: Instant


class TenantPatch(StrictInput):
    model_config = ConfigDict(json_schema_extra=not_nullable("timezone"))

    timezone: TimezoneName | None = None
    contact_email: Email | None = None


class ApiKeyCreate(StrictInput):
    name: str = Field(default="api key", min_length=1, max_length=128)


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    created_at: Instant
    revoked_at: Instant | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the key itself; shown once, never stored")


class WhoAmI(BaseModel):
    tenant: TenantOut
    api_key: ApiKeyOut


def tenant_out(tenant: object) -> TenantOut:
    return TenantOut.model_validate(tenant, from_attributes=True)


def key_out(key: object) -> ApiKeyOut:
    return ApiKeyOut.model_validate(key, from_attributes=True)
