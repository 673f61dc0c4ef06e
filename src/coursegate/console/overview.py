"""Overview: the program at a glance (SPEC §9) — what came in and went out over 30 days, what
is waiting, and what needs a person."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from coursegate.console.charts import Series, bar_chart, days
from coursegate.console.connectors import with_last_runs
from coursegate.console.repository import OverviewRepository
from coursegate.console.rollup import per_day_counts
from coursegate.console.web import PREFIX, Viewer, render
from coursegate.web import ClockDep, Session

router = APIRouter()
DAYS = 30


@router.get(PREFIX, include_in_schema=False)
async def overview(
    request: Request, console: Viewer, session: Session, now: ClockDep
) -> HTMLResponse:
    repo = OverviewRepository(session)
    at = now.now()
    zone = console.timezone
    span = days(at.astimezone(ZoneInfo(zone)).date(), DAYS)
    tenant = console.tenant_id
    counts = await per_day_counts(session, tenant, zone, span)
    succeeded = counts["deliveries_succeeded"]
    failed = counts["deliveries_failed"]
    completions = counts["completions"]
    credits = counts["credits"]
    backlog = await repo.backlog(tenant, at)
    oldest = at - backlog.oldest_due_at if backlog.oldest_due_at else None
    charts = {
        "completions": bar_chart(
            "Completions per day", span, [Series("completions", "", completions)]
        ),
        "credits": bar_chart("Credits per day", span, [Series("credits", "", credits)]),
        "deliveries": bar_chart(
            "Deliveries per day",
            span,
            [Series("succeeded", "succeeded", succeeded), Series("failed", "failed", failed)],
        ),
    }
    return render(
        request,
        "overview.html",
        {
            "title": "Overview",
            "active": "Overview",
            "charts": charts,
            "backlog": backlog,
            "oldest": _age(oldest),
            "runs": await with_last_runs(session, tenant),
            "parked": await repo.parked_count(tenant),
            "rejects": await repo.open_rejects(tenant),
        },
    )


def _age(delta: timedelta | None) -> str | None:
    if delta is None:
        return None
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
