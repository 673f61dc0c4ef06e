"""All SQL about connectors."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.models import Connector, Course


class ConnectorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str, connector_id: str) -> Connector | None:
        return await self.session.get(Connector, (tenant_id, connector_id))

    async def add(self, connector: Connector) -> None:
        self.session.add(connector)
        await self.session.flush()

    async def flush(self) -> None:
        await self.session.flush()

    async def delete(self, connector: Connector) -> None:
        await self.session.delete(connector)
        await self.session.flush()

    async def list(
        self, tenant_id: str, *, after: str | None, limit: int, kind: str | None = None
    ) -> Sequence[Connector]:
        stmt = select(Connector).where(Connector.tenant_id == tenant_id)
        if kind is not None:
            stmt = stmt.where(Connector.kind == kind)
        if after is not None:
            stmt = stmt.where(Connector.id > after)
        return (await self.session.scalars(stmt.order_by(Connector.id).limit(limit))).all()

    async def existing_course_ids(self, tenant_id: str, course_ids: Collection[str]) -> set[str]:
        """Which of these ids name a course of the tenant, in one query."""
        if not course_ids:
            return set()
        stmt = select(Course.id).where(
            Course.tenant_id == tenant_id, Course.id.in_(list(course_ids))
        )
        return set((await self.session.scalars(stmt)).all())
