"""All SQL about tenants and API keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.models import ApiKey, Tenant


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str) -> Tenant | None:
        return await self.session.get(Tenant, tenant_id)

    async def add(self, tenant: Tenant) -> None:
        self.session.add(tenant)
        await self.session.flush()

    async def update(self, tenant_id: str, values: dict[str, Any]) -> Tenant | None:
        await self.session.execute(update(Tenant).where(Tenant.id == tenant_id).values(**values))
        return await self.session.get(Tenant, tenant_id, populate_existing=True)

    async def add_key(self, key: ApiKey) -> None:
        self.session.add(key)
        await self.session.flush()

    async def keys_by_prefix(self, prefix: str) -> Sequence[ApiKey]:
        """Candidate keys for a presented key; normally one, never filtered by tenant (the key says which)."""
        rows = await self.session.scalars(select(ApiKey).where(ApiKey.prefix == prefix))
        return rows.all()

    async def get_key(self, tenant_id: str, key_id: uuid.UUID) -> ApiKey | None:
        return await self.session.get(ApiKey, (tenant_id, key_id))

    async def list_keys(
        self, tenant_id: str, *, after: uuid.UUID | None, limit: int
    ) -> Sequence[ApiKey]:
        stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(ApiKey.id > after)
        rows = await self.session.scalars(stmt.order_by(ApiKey.id).limit(limit))
        return rows.all()

    async def flush(self) -> None:
        await self.session.flush()
