"""Tenancy's rules: creating tenants and keys, authenticating keys, revoking them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.kit.clock import Clock
from coursegate.kit.errors import AlreadyExists, NotFound, ValidationFailed
from coursegate.kit.fields import check_email, check_field, check_timezone
from coursegate.kit.ids import is_slug, uuid7
from coursegate.models import ApiKey, Tenant
from coursegate.tenancy import keys
from coursegate.tenancy.repository import TenantRepository


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a tenant, through one of its keys."""

    tenant_id: str
    key_id: uuid.UUID


class TenancyService:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.repo = TenantRepository(session)
        self.clock = clock

    async def create_tenant(
        self, slug: str, *, timezone: str = "UTC", contact_email: str | None = None
    ) -> tuple[Tenant, ApiKey, str]:
        """A new tenant with its first key; the key's plaintext is returned once."""
        if not is_slug(slug):
            raise ValidationFailed.field("slug", "invalid", "must match [a-z0-9][a-z0-9_-]{0,62}")
        check_field(check_timezone, "timezone", timezone)
        if contact_email is not None:
            check_field(check_email, "contact_email", contact_email)
        if await self.repo.get(slug) is not None:
            raise AlreadyExists(f"tenant {slug} exists")
        now = self.clock.now()
        tenant = Tenant(
            id=slug, timezone=timezone, contact_email=contact_email, created_at=now, updated_at=now
        )
        await self.repo.add(tenant)
        key, plaintext = await self.create_key(slug, name="initial key")
        return tenant, key, plaintext

    async def get_tenant(self, tenant_id: str) -> Tenant:
        tenant = await self.repo.get(tenant_id)
        if tenant is None:
            raise NotFound()
        return tenant

    async def update_tenant(self, tenant_id: str, *, changes: dict[str, str | None]) -> Tenant:
        if "timezone" in changes and changes["timezone"] is None:
            raise ValidationFailed.field("timezone", "required", "a tenant always has a timezone")
        if not changes:
            return await self.get_tenant(tenant_id)
        tenant = await self.repo.update(tenant_id, {**changes, "updated_at": self.clock.now()})
        if tenant is None:
            raise NotFound()
        return tenant

    async def create_key(self, tenant_id: str, *, name: str) -> tuple[ApiKey, str]:
        material = keys.new_key()
        key = ApiKey(
            tenant_id=tenant_id,
            id=uuid7(),
            prefix=material.prefix,
            digest=material.digest,
            name=name,
            created_at=self.clock.now(),
            revoked_at=None,
        )
        await self.repo.add_key(key)
        return key, material.plaintext

    async def authenticate(self, presented: str) -> tuple[Principal, ApiKey] | None:
        prefix = keys.prefix_of(presented)
        if prefix is None:
            return None
        for candidate in await self.repo.keys_by_prefix(prefix):
            if candidate.revoked_at is None and keys.matches(presented, candidate.digest):
                return Principal(tenant_id=candidate.tenant_id, key_id=candidate.id), candidate
        return None

    async def get_key(self, tenant_id: str, key_id: uuid.UUID) -> ApiKey:
        key = await self.repo.get_key(tenant_id, key_id)
        if key is None:
            raise NotFound()
        return key

    async def revoke_key(self, tenant_id: str, key_id: uuid.UUID) -> ApiKey:
        """Revoking is idempotent; the first revocation time is kept."""
        key = await self.get_key(tenant_id, key_id)
        if key.revoked_at is None:
            key.revoked_at = self.clock.now()
            await self.repo.flush()
        return key
