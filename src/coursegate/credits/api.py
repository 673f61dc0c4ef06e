"""A learner's hours and credits in one program (SPEC §7)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from coursegate.credits.repository import CreditRepository
from coursegate.kit.errors import NotFound
from coursegate.kit.fields import HoursText
from coursegate.kit.ids import UuidPath, path_uuid
from coursegate.kit.timefmt import Instant
from coursegate.people.repository import PeopleRepository
from coursegate.programs.repository import ProgramRepository
from coursegate.web import CurrentPrincipal, Session

router = APIRouter(tags=["credits"])


class CreditOut(BaseModel):
    sequence: int
    awarded_at: Instant
    completion_id: uuid.UUID


class CreditsOut(BaseModel):
    program: str
    hours_total: HoursText
    credits_total: int
    credits: list[CreditOut]


@router.get("/v1/people/{person_id}/credits")
async def person_credits(
    person_id: UuidPath,
    who: CurrentPrincipal,
    session: Session,
    program: str = Query(max_length=63),
) -> CreditsOut:
    person = path_uuid(person_id)
    if await PeopleRepository(session).get(who.tenant_id, person) is None:
        raise NotFound()
    if await ProgramRepository(session).get(who.tenant_id, program) is None:
        raise NotFound("no such program")
    repo = CreditRepository(session)
    totals = await repo.totals(who.tenant_id, program, person)
    credits = await repo.credits(who.tenant_id, program, person)
    return CreditsOut(
        program=program,
        hours_total=totals.hours_total if totals else Decimal("0.00"),
        credits_total=totals.credits_total if totals else 0,
        credits=[CreditOut.model_validate(c, from_attributes=True) for c in credits],
    )
