"""Completions: what came in (with filters), the inbound audit (every request and its outcome),
and the parked reports waiting for their learner, each with Replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from coursegate.completions.parking import ParkingService
from coursegate.completions.repository import CompletionReads
from coursegate.console.web import PREFIX, Actor, Viewer, recorded, render
from coursegate.kit.ids import path_uuid, query_uuid
from coursegate.web import ClockDep, Session

router = APIRouter()
PAGE = 50
AUDIT_OUTCOMES = ("accepted", "duplicate", "parked", "rejected", "unauthorized")
Filter = Annotated[str | None, Query(max_length=128)]


def _present(**values: object) -> dict[str, object]:
    return {k: v for k, v in values.items() if v not in (None, "")}


@router.get(f"{PREFIX}/completions", include_in_schema=False)
async def completions_page(
    request: Request,
    console: Viewer,
    session: Session,
    now: ClockDep,
    program: Filter = None,
    provider: Filter = None,
    course_id: Filter = None,
    before: Filter = None,
    outcome: Filter = None,
    audit_before: Filter = None,
) -> HTMLResponse:
    reads = CompletionReads(session)
    filters = _present(program_id=program, provider_id=provider, course_id=course_id)
    rows = await reads.completions(
        console.tenant_id,
        filters=filters,
        after=query_uuid("before", before),
        limit=PAGE + 1,
        newest_first=True,
    )
    audit_filters = _present(outcome=outcome)
    audit = await reads.audit(
        console.tenant_id,
        filters=audit_filters,
        before=query_uuid("audit_before", audit_before),
        limit=PAGE + 1,
    )
    parked = await ParkingService(session, now).parked(
        console.tenant_id, open_only=True, limit=PAGE
    )
    query = _present(program=program, provider=provider, course_id=course_id, outcome=outcome)
    return render(
        request,
        "completions.html",
        {
            "title": "Completions",
            "active": "Completions",
            "completions": rows[:PAGE],
            "next_completions": rows[PAGE - 1].id if len(rows) > PAGE else None,
            "audit": audit[:PAGE],
            "next_audit": audit[PAGE - 1].id if len(audit) > PAGE else None,
            "filters": {"program": program, "provider": provider, "course_id": course_id},
            "outcome": outcome,
            "outcomes": AUDIT_OUTCOMES,
            "query": query,
            "parked": parked,
        },
    )


@router.post(f"{PREFIX}/completions/parked/{{parked_id}}/replay", include_in_schema=False)
async def replay_parked(
    request: Request, parked_id: str, console: Actor, session: Session, now: ClockDep
) -> HTMLResponse:
    """Replay one parked report now; its row is replaced by the outcome."""
    async with recorded(request, session, console, "replay", "parked_completion", parked_id) as act:
        result = await ParkingService(session, now).replay_one(
            console.tenant_id, path_uuid(parked_id)
        )
        act.detail = {"outcome": result.outcome, "replayed": result.replayed}
    return render(request, "parked_outcome.html", {"result": result})
