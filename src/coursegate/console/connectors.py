"""Connectors: each partner feed with its last run; a connector's runs (a running one updates
itself), its rejects with the raw entry, Run now and Replay rejects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.connectors.api import service as connector_service
from coursegate.connectors.http import RetryPolicy
from coursegate.connectors.repository import ConnectorRepository
from coursegate.connectors.runner import Runner
from coursegate.console.web import PREFIX, Actor, BriefActor, Console, Viewer, recorded, render
from coursegate.kit.clock import Clock
from coursegate.kit.ids import path_uuid
from coursegate.models import Connector, ConnectorRun
from coursegate.web import ClockDep, Session, database

router = APIRouter()
LISTED = 500
RUNS_SHOWN = 20
REJECTS_SHOWN = 100
POLL = "every 2s"


async def _runs_context(session: AsyncSession, tenant_id: str, connector_id: str) -> dict[str, Any]:
    runs = await ConnectorRepository(session).runs(
        tenant_id, connector_id, after=None, limit=RUNS_SHOWN
    )
    return {"runs": runs, "running": any(r.status == "running" for r in runs), "poll": POLL}


async def with_last_runs(
    session: AsyncSession, tenant_id: str
) -> list[tuple[Connector, ConnectorRun | None]]:
    """Each connector of the tenant with its newest run (the Overview shows them too)."""
    repo = ConnectorRepository(session)
    connectors = await repo.list(tenant_id, after=None, limit=LISTED)
    last = await repo.last_runs(tenant_id, [c.id for c in connectors])
    return [(c, last.get(c.id)) for c in connectors]


@router.get(f"{PREFIX}/connectors", include_in_schema=False)
async def connectors_page(request: Request, console: Viewer, session: Session) -> HTMLResponse:
    return render(
        request,
        "connectors.html",
        {
            "title": "Connectors",
            "active": "Connectors",
            "rows": await with_last_runs(session, console.tenant_id),
        },
    )


async def _page(
    request: Request,
    console: Console,
    session: AsyncSession,
    now: Clock,
    connector_id: str,
    notice: str | None = None,
) -> HTMLResponse:
    connector = await connector_service(request, session, now).get(console.tenant_id, connector_id)
    rejects = await ConnectorRepository(session).rejects(
        console.tenant_id, connector_id, after=None, limit=REJECTS_SHOWN, open_only=True
    )
    return render(
        request,
        "connector.html",
        {
            "title": f"Connector {connector.id}",
            "active": "Connectors",
            "connector": connector,
            "rejects": rejects,
            "notice": notice,
            **await _runs_context(session, console.tenant_id, connector_id),
        },
    )


@router.get(f"{PREFIX}/connectors/{{connector_id}}", include_in_schema=False)
async def connector_page(
    request: Request, connector_id: str, console: Viewer, session: Session, now: ClockDep
) -> HTMLResponse:
    return await _page(request, console, session, now, connector_id)


@router.get(f"{PREFIX}/connectors/{{connector_id}}/runs", include_in_schema=False)
async def runs_fragment(
    request: Request, connector_id: str, console: Viewer, session: Session, now: ClockDep
) -> HTMLResponse:
    """The runs table alone, which polls itself while a run is in progress."""
    await connector_service(request, session, now).get(console.tenant_id, connector_id)
    context = await _runs_context(session, console.tenant_id, connector_id)
    return render(request, "connector_runs.html", {"connector_id": connector_id, **context})


@router.post(f"{PREFIX}/connectors/{{connector_id}}/run", include_in_schema=False)
async def run_now(
    request: Request, connector_id: str, console: Actor, session: Session, now: ClockDep
) -> HTMLResponse:
    """A durable run on a worker, as `coursegate pull` starts it; refused while one runs."""
    async with recorded(request, session, console, "run_now", "connector", connector_id) as act:
        run = await connector_service(request, session, now).run_now(
            console.tenant_id, connector_id, request.app.state.enqueuer
        )
        act.detail = {"run": str(run.id)}
    return await _page(
        request, console, session, now, connector_id, notice="Run started: it shows below."
    )


@router.post(f"{PREFIX}/connectors/{{connector_id}}/replay-rejects", include_in_schema=False)
async def replay_rejects(
    request: Request, connector_id: str, console: BriefActor, now: ClockDep
) -> HTMLResponse:
    """Each open reject taken again, in transactions of the runner's own."""
    state = request.app.state
    runner = Runner(
        database(request),
        now,
        state.secret_stores,
        state.adapters,
        allow_private=state.settings.allow_private_webhook_targets,
        policy=RetryPolicy.of(state.settings),
    )
    async with recorded(request, None, console, "replay_rejects", "connector", connector_id) as act:
        result = await runner.replay_rejects(console.tenant_id, connector_id)
        act.detail = {
            "replayed": result.replayed,
            "resolved": result.resolved,
            "still_rejected": result.still_rejected,
        }
    notice = (
        f"Replayed {result.replayed} rejects: {result.resolved} taken "
        f"({result.created} records created), {result.still_rejected} still refused."
    )
    async with database(request).transaction() as session:
        return await _page(request, console, session, now, connector_id, notice=notice)


async def _answer_hold(
    request: Request,
    connector_id: str,
    run_id: str,
    console: Console,
    session: AsyncSession,
    now: Clock,
    *,
    confirm: bool,
) -> HTMLResponse:
    verb = "confirm_hold" if confirm else "discard_hold"
    async with recorded(request, session, console, verb, "connector_run", run_id) as act:
        run = await connector_service(request, session, now).settle_held(
            console.tenant_id,
            connector_id,
            path_uuid(run_id),
            request.app.state.adapters,
            confirm=confirm,
            by=console.current.email,
        )
        act.detail = {"connector": connector_id, "message": run.message}
    return await _page(request, console, session, now, connector_id, notice=run.message)


@router.post(
    f"{PREFIX}/connectors/{{connector_id}}/runs/{{run_id}}/confirm", include_in_schema=False
)
async def confirm_hold(
    request: Request,
    connector_id: str,
    run_id: str,
    console: Actor,
    session: Session,
    now: ClockDep,
) -> HTMLResponse:
    """A held run's cancellations, done now (a person looked and agrees)."""
    return await _answer_hold(request, connector_id, run_id, console, session, now, confirm=True)


@router.post(
    f"{PREFIX}/connectors/{{connector_id}}/runs/{{run_id}}/discard", include_in_schema=False
)
async def discard_hold(
    request: Request,
    connector_id: str,
    run_id: str,
    console: Actor,
    session: Session,
    now: ClockDep,
) -> HTMLResponse:
    """A held run's cancellations, dropped (a roster glitch)."""
    return await _answer_hold(request, connector_id, run_id, console, session, now, confirm=False)
