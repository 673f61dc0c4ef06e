"""Activity: every action operators took, newest first (SPEC §9)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from coursegate.console.web import PREFIX, Viewer, render
from coursegate.kit.ids import query_uuid
from coursegate.operators.service import OperatorService
from coursegate.web import ClockDep, Session

router = APIRouter()
PAGE = 100


@router.get(f"{PREFIX}/activity", include_in_schema=False)
async def activity(
    request: Request, console: Viewer, session: Session, now: ClockDep, before: str | None = None
) -> HTMLResponse:
    rows = await OperatorService(session, now).actions(
        console.tenant_id, before=query_uuid("before", before), limit=PAGE + 1
    )
    shown = rows[:PAGE]
    return render(
        request,
        "activity.html",
        {
            "title": "Activity",
            "active": "Activity",
            "actions": shown,
            "next_before": shown[-1].id if len(rows) > PAGE else None,
        },
    )
