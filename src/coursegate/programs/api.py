"""Routes for programs. A program's rules are fixed once created: credits already
earned were computed with them, so changing `hours_per_credit` would make the
ledger disagree with itself."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from coursegate.kit.errors import AlreadyExists, NotFound
from coursegate.kit.pagination import Page, PageRequest, build_page, cursor_text, page_request
from coursegate.models import Program
from coursegate.programs.repository import ProgramRepository
from coursegate.programs.schemas import ProgramCreate, ProgramOut
from coursegate.web import ClockDep, CurrentPrincipal, Session

router = APIRouter(prefix="/v1/programs", tags=["programs"])


def program_out(program: Program) -> ProgramOut:
    return ProgramOut.model_validate(program, from_attributes=True)


@router.post("", status_code=201)
async def create_program(
    body: ProgramCreate, who: CurrentPrincipal, session: Session, clock: ClockDep
) -> ProgramOut:
    repo = ProgramRepository(session)
    if await repo.get(who.tenant_id, body.id) is not None:
        raise AlreadyExists(f"program {body.id} exists")
    program = Program(tenant_id=who.tenant_id, created_at=clock.now(), **body.model_dump())
    await repo.add(program)
    return program_out(program)


@router.get("")
async def list_programs(
    who: CurrentPrincipal, session: Session, page: PageRequest = Depends(page_request)
) -> Page[ProgramOut]:
    rows = await ProgramRepository(session).list(
        who.tenant_id, after=cursor_text(page.after), limit=page.limit + 1
    )
    return build_page(rows, page, lambda p: {"id": p.id}, program_out)


@router.get("/{program_id}")
async def get_program(program_id: str, who: CurrentPrincipal, session: Session) -> ProgramOut:
    program = await ProgramRepository(session).get(who.tenant_id, program_id)
    if program is None:
        raise NotFound()
    return program_out(program)
