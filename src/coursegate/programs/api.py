"""Routes for programs. A program's rules are fixed once created: credits already
earned were computed with them, so changing `hours_per_credit` would make the
ledger disagree with itself."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from coursegate.kit.contract import raises
from coursegate.kit.errors import AlreadyExists
from coursegate.kit.ids import SlugPath
from coursegate.kit.pagination import Page, PageRequest, build_page, cursor_text, page_request
from coursegate.models import Program
from coursegate.programs.repository import ProgramRepository
from coursegate.programs.schemas import ProgramCreate, ProgramOut
from coursegate.programs.service import ProgramService
from coursegate.web import ClockDep, CurrentPrincipal, Locate, Session

router = APIRouter(prefix="/v1/programs", tags=["programs"])


def program_out(program: Program) -> ProgramOut:
    return ProgramOut.model_validate(program, from_attributes=True)


@router.post("", status_code=201, responses=raises(AlreadyExists))
async def create_program(
    body: ProgramCreate, who: CurrentPrincipal, session: Session, clock: ClockDep, locate: Locate
) -> ProgramOut:
    program = await ProgramService(session, clock).create(who.tenant_id, body)
    locate(program.id)
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
async def get_program(
    program_id: SlugPath, who: CurrentPrincipal, session: Session, clock: ClockDep
) -> ProgramOut:
    return program_out(await ProgramService(session, clock).get(who.tenant_id, program_id))
