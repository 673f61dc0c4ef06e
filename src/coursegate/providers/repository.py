"""All SQL about providers and their keys."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.models import Provider, ProviderKey


class ProviderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str, provider_id: str) -> Provider | None:
        return await self.session.get(Provider, (tenant_id, provider_id))

    async def keys(self, tenant_id: str, provider_id: str) -> Sequence[ProviderKey]:
        stmt = (
            select(ProviderKey)
            .where(ProviderKey.tenant_id == tenant_id, ProviderKey.provider_id == provider_id)
            .order_by(ProviderKey.created_at, ProviderKey.key_id)
        )
        return (await self.session.scalars(stmt)).all()

    async def keys_of(
        self, tenant_id: str, provider_ids: Sequence[str]
    ) -> dict[str, list[ProviderKey]]:
        """The keys of several providers in one query (a page of the list)."""
        stmt = (
            select(ProviderKey)
            .where(ProviderKey.tenant_id == tenant_id, ProviderKey.provider_id.in_(provider_ids))
            .order_by(ProviderKey.created_at, ProviderKey.key_id)
        )
        grouped: dict[str, list[ProviderKey]] = {p: [] for p in provider_ids}
        for key in (await self.session.scalars(stmt)).all():
            grouped[key.provider_id].append(key)
        return grouped

    async def get_key(self, tenant_id: str, provider_id: str, key_id: str) -> ProviderKey | None:
        return await self.session.get(ProviderKey, (tenant_id, provider_id, key_id))

    async def add(self, *rows: Provider | ProviderKey) -> None:
        for row in rows:
            self.session.add(row)
            await self.session.flush()

    async def list(self, tenant_id: str, *, after: str | None, limit: int) -> Sequence[Provider]:
        stmt = select(Provider).where(Provider.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(Provider.id > after)
        return (await self.session.scalars(stmt.order_by(Provider.id).limit(limit))).all()

    async def flush(self) -> None:
        await self.session.flush()
