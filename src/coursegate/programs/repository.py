"""All SQL about programs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.models import Program


class ProgramRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str, program_id: str) -> Program | None:
        return await self.session.get(Program, (tenant_id, program_id))

    async def add(self, program: Program) -> None:
        self.session.add(program)
        await self.session.flush()

    async def list(self, tenant_id: str, *, after: str | None, limit: int) -> Sequence[Program]:
        stmt = select(Program).where(Program.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(Program.id > after)
        return (await self.session.scalars(stmt.order_by(Program.id).limit(limit))).all()
