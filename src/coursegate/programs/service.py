"""Programs' rules: ids unique per tenant, rules fixed once created (see programs/api.py)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.kit.clock import Clock
from coursegate.kit.errors import AlreadyExists, NotFound
from coursegate.models import Program
from coursegate.programs.repository import ProgramRepository
from coursegate.programs.schemas import ProgramCreate


class ProgramService:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.repo = ProgramRepository(session)
        self.clock = clock

    async def create(self, tenant_id: str, body: ProgramCreate) -> Program:
        if await self.repo.get(tenant_id, body.id) is not None:
            raise AlreadyExists(f"program {body.id} exists")
        program = Program(tenant_id=tenant_id, created_at=self.clock.now(), **body.model_dump())
        try:
            await self.repo.add(program)
        except IntegrityError:
            # A concurrent request created it between the check and the insert.
            raise AlreadyExists(f"program {body.id} exists") from None
        return program

    async def get(self, tenant_id: str, program_id: str) -> Program:
        program = await self.repo.get(tenant_id, program_id)
        if program is None:
            raise NotFound()
        return program
