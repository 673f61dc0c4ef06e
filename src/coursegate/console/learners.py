"""Learners: find a person by an identifier or a name; a learner's identifiers, hours and
credits per program with the credit ledger, completions and enrollments; the statement as CSV."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.completions.repository import CompletionReads
from coursegate.console.web import PREFIX, Viewer, render
from coursegate.credits.repository import CreditRepository
from coursegate.enrollments.repository import EnrollmentRepository
from coursegate.kit.clock import Clock
from coursegate.kit.ids import path_uuid
from coursegate.models import Completion, Credit, Enrollment, Person, PersonIdentifier, Program
from coursegate.people.schemas import PersonOut
from coursegate.people.service import NAME_SEARCH_MIN_LENGTH, PeopleService
from coursegate.programs.repository import ProgramRepository
from coursegate.web import ClockDep, Session

router = APIRouter()
SHOWN = 200
PROGRAMS_SHOWN = 500


@dataclass(frozen=True, slots=True)
class ProgramStanding:
    program: Program
    hours: Decimal
    credits: int
    ledger: list[Credit]


@dataclass(frozen=True, slots=True)
class Step:
    status: str
    at: datetime


def history(enrollment: Enrollment) -> list[Step]:
    """An enrollment's way so far, read off the instants it keeps of each change."""
    steps = [
        Step("created", enrollment.created_at),
        *(
            Step(status, at)
            for status, at in (
                ("claimed", enrollment.claimed_at),
                ("activated", enrollment.activated_at),
                ("completed", enrollment.completed_at),
            )
            if at is not None
        ),
    ]
    if enrollment.ended_at is not None and enrollment.status not in {"completed"}:
        steps.append(Step(enrollment.status, enrollment.ended_at))
    return sorted(steps, key=lambda s: s.at)


async def standings(
    session: AsyncSession, tenant_id: str, person_id: uuid.UUID
) -> list[ProgramStanding]:
    """Hours and credits in every program the learner has any in, with each credit."""
    credits = CreditRepository(session)
    result = []
    for program in await ProgramRepository(session).list(
        tenant_id, after=None, limit=PROGRAMS_SHOWN
    ):
        totals = await credits.totals(tenant_id, program.id, person_id)
        if totals is None:
            continue
        ledger = list(await credits.credits(tenant_id, program.id, person_id))
        result.append(ProgramStanding(program, totals.hours_total, totals.credits_total, ledger))
    return result


async def _learner(
    session: AsyncSession, now: Clock, tenant_id: str, person_id: str
) -> tuple[Person, Sequence[PersonIdentifier], uuid.UUID]:
    pid = path_uuid(person_id)
    person, identifiers = await PeopleService(session, now).get(tenant_id, pid)
    return person, identifiers, pid


@router.get(f"{PREFIX}/learners", include_in_schema=False)
async def learners(
    request: Request,
    console: Viewer,
    session: Session,
    now: ClockDep,
    search: Annotated[str | None, Query(max_length=256)] = None,
) -> HTMLResponse:
    """One field: an identifier's value (exact, any namespace) first; when nothing has that
    identifier, a part of a name."""
    text = (search or "").strip()
    results: list[PersonOut] = []
    searched_by = None
    if text:
        service = PeopleService(session, now)
        results = await service.search(console.tenant_id, identifier=text, limit=SHOWN)
        searched_by = "identifier"
        if not results and len(text) >= NAME_SEARCH_MIN_LENGTH:
            results = await service.search(console.tenant_id, q=text, limit=SHOWN)
            searched_by = "name"
    return render(
        request,
        "learners.html",
        {
            "title": "Learners",
            "active": "Learners",
            "search": text,
            "results": results,
            "searched_by": searched_by,
            "min_length": NAME_SEARCH_MIN_LENGTH,
        },
    )


@router.get(f"{PREFIX}/learners/{{person_id}}", include_in_schema=False)
async def learner(
    request: Request, person_id: str, console: Viewer, session: Session, now: ClockDep
) -> HTMLResponse:
    person, identifiers, pid = await _learner(session, now, console.tenant_id, person_id)
    completions: list[Completion] = list(
        await CompletionReads(session).completions(
            console.tenant_id, filters={"person_id": pid}, after=None, limit=SHOWN
        )
    )
    enrollments = await EnrollmentRepository(session).listing(
        console.tenant_id, after=None, limit=SHOWN, person_id=pid
    )
    return render(
        request,
        "learner.html",
        {
            "title": person.name or "Learner",
            "active": "Learners",
            "person": person,
            "identifiers": identifiers,
            "standings": await standings(session, console.tenant_id, pid),
            "completions": completions,
            "enrollments": [(e, history(e)) for e in enrollments],
        },
    )


STATEMENT_COLUMNS = (
    "program",
    "record",
    "hours",
    "credits",
    "sequence",
    "awarded_at",
    "completion_id",
)


@router.get(f"{PREFIX}/learners/{{person_id}}/statement.csv", include_in_schema=False)
async def statement(person_id: str, console: Viewer, session: Session, now: ClockDep) -> Response:
    """Per program one `total` row (hours and credits), then one `credit` row per credit
    earned, in order: what a case manager files or hands to the learner."""
    _, _, pid = await _learner(session, now, console.tenant_id, person_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(STATEMENT_COLUMNS)
    for standing in await standings(session, console.tenant_id, pid):
        program = standing.program.id
        writer.writerow((program, "total", f"{standing.hours:.2f}", standing.credits, "", "", ""))
        for credit in standing.ledger:
            writer.writerow(
                (
                    program,
                    "credit",
                    "",
                    "",
                    credit.sequence,
                    credit.awarded_at.isoformat(),
                    credit.completion_id,
                )
            )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="statement-{pid}.csv"'},
    )
