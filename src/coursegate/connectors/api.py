"""Routes for connector configuration (SPEC §4, §7). The rules live in the service."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response

from coursegate.connectors.repository import ConnectorRepository, stored_watermarks
from coursegate.connectors.runner import AlreadyRunning
from coursegate.connectors.schemas import (
    AuthorizationOut,
    ConnectorCreate,
    ConnectorOut,
    ConnectorPatch,
    RejectOut,
    RunOut,
)
from coursegate.connectors.service import ConnectorService, RunNotHeld
from coursegate.kit.contract import raises
from coursegate.kit.errors import AlreadyExists
from coursegate.kit.ids import SlugPath, UuidPath, path_uuid
from coursegate.kit.pagination import (
    Page,
    PageRequest,
    build_page,
    cursor_text,
    cursor_uuid,
    page_request,
)
from coursegate.models import Authorization, Connector, ConnectorReject, ConnectorRun
from coursegate.tenancy.service import Principal
from coursegate.web import ClockDep, CurrentPrincipal, Locate, Session

router = APIRouter(prefix="/v1/connectors", tags=["connectors"])
authorizations_router = APIRouter(prefix="/v1/authorizations", tags=["connectors"])


def run_out(run: ConnectorRun) -> RunOut:
    return RunOut.model_validate(run, from_attributes=True)


def connector_out(connector: Connector, last_run: ConnectorRun | None = None) -> ConnectorOut:
    return ConnectorOut(
        id=connector.id,
        kind=connector.kind,
        schedule=connector.schedule,
        config=connector.config,
        enabled=connector.enabled,
        watermark=connector.watermark,
        watermarks=stored_watermarks(connector),
        last_run=run_out(last_run) if last_run is not None else None,
        created_at=connector.created_at,
        updated_at=connector.updated_at,
    )


async def with_last_run(session: Session, connector: Connector) -> ConnectorOut:
    runs = await ConnectorRepository(session).last_runs(connector.tenant_id, [connector.id])
    return connector_out(connector, runs.get(connector.id))


def service(request: Request, session: Session, clock: ClockDep) -> ConnectorService:
    state = request.app.state
    return ConnectorService(
        session,
        clock,
        state.secret_stores,
        allow_private=state.settings.allow_private_webhook_targets,
    )


Service = Depends(service)


@router.post("", status_code=201, responses=raises(AlreadyExists))
async def create_connector(
    body: ConnectorCreate,
    who: CurrentPrincipal,
    locate: Locate,
    connectors: ConnectorService = Service,
) -> ConnectorOut:
    connector = await connectors.create(who.tenant_id, body)
    locate(connector.id)
    return connector_out(connector, None)


@router.get("")
async def list_connectors(
    who: CurrentPrincipal,
    session: Session,
    page: PageRequest = Depends(page_request),
    kind: str | None = Query(default=None, max_length=16),
) -> Page[ConnectorOut]:
    repo = ConnectorRepository(session)
    rows = await repo.list(
        who.tenant_id, after=cursor_text(page.after), limit=page.limit + 1, kind=kind
    )
    last = await repo.last_runs(who.tenant_id, [c.id for c in rows])
    return build_page(
        rows, page, lambda c: {"id": c.id}, lambda c: connector_out(c, last.get(c.id))
    )


@router.get("/{connector_id}")
async def get_connector(
    connector_id: SlugPath,
    who: CurrentPrincipal,
    session: Session,
    connectors: ConnectorService = Service,
) -> ConnectorOut:
    return await with_last_run(session, await connectors.get(who.tenant_id, connector_id))


@router.patch("/{connector_id}")
async def update_connector(
    connector_id: SlugPath,
    body: ConnectorPatch,
    who: CurrentPrincipal,
    session: Session,
    connectors: ConnectorService = Service,
) -> ConnectorOut:
    updated = await connectors.update(who.tenant_id, connector_id, body)
    return await with_last_run(session, updated)


@router.get("/{connector_id}/runs")
async def list_runs(
    connector_id: SlugPath,
    who: CurrentPrincipal,
    session: Session,
    page: PageRequest = Depends(page_request),
    connectors: ConnectorService = Service,
) -> Page[RunOut]:
    """Newest first."""
    await connectors.get(who.tenant_id, connector_id)
    rows = await ConnectorRepository(session).runs(
        who.tenant_id, connector_id, after=cursor_uuid(page.after), limit=page.limit + 1
    )
    return build_page(rows, page, lambda r: {"id": str(r.id)}, run_out)


@router.post("/{connector_id}/runs", status_code=202, responses=raises(AlreadyRunning))
async def start_run(
    connector_id: SlugPath,
    who: CurrentPrincipal,
    request: Request,
    connectors: ConnectorService = Service,
) -> RunOut:
    """Run now, on a worker, as `coursegate pull` does: 202 with the run, `running`;
    409 `RUN_IN_PROGRESS` while a run of the connector is in progress (nothing started)."""
    run = await connectors.run_now(who.tenant_id, connector_id, request.app.state.enqueuer)
    return run_out(run)


async def _settle(
    connector_id: SlugPath,
    run_id: UuidPath,
    who: Principal,
    request: Request,
    connectors: ConnectorService,
    *,
    confirm: bool,
) -> RunOut:
    run = await connectors.settle_held(
        who.tenant_id,
        connector_id,
        path_uuid(run_id),
        request.app.state.adapters,
        confirm=confirm,
        by=f"api key {who.key_id}",
    )
    return run_out(run)


@router.post("/{connector_id}/runs/{run_id}/confirm", responses=raises(RunNotHeld))
async def confirm_held_run(
    connector_id: SlugPath,
    run_id: UuidPath,
    who: CurrentPrincipal,
    request: Request,
    connectors: ConnectorService = Service,
) -> RunOut:
    """A held run (SPEC §5 `connector.run.held`): cancel what it withdrew, now.
    409 `RUN_NOT_HELD` for a run that is not waiting."""
    return await _settle(connector_id, run_id, who, request, connectors, confirm=True)


@router.post("/{connector_id}/runs/{run_id}/discard", responses=raises(RunNotHeld))
async def discard_held_run(
    connector_id: SlugPath,
    run_id: UuidPath,
    who: CurrentPrincipal,
    request: Request,
    connectors: ConnectorService = Service,
) -> RunOut:
    """A held run: cancel nothing (a roster glitch); the run ends. 409 `RUN_NOT_HELD`."""
    return await _settle(connector_id, run_id, who, request, connectors, confirm=False)


@router.get("/{connector_id}/rejects")
async def list_rejects(
    connector_id: SlugPath,
    who: CurrentPrincipal,
    session: Session,
    page: PageRequest = Depends(page_request),
    open_only: bool = Query(default=False, alias="open"),
    connectors: ConnectorService = Service,
) -> Page[RejectOut]:
    """Oldest first; `open=true` leaves out the rejects a replay has taken."""
    await connectors.get(who.tenant_id, connector_id)
    rows = await ConnectorRepository(session).rejects(
        who.tenant_id,
        connector_id,
        after=cursor_uuid(page.after),
        limit=page.limit + 1,
        open_only=open_only,
    )
    return build_page(rows, page, lambda r: {"id": str(r.id)}, reject_out)


def reject_out(reject: ConnectorReject) -> RejectOut:
    return RejectOut.model_validate(reject, from_attributes=True)


def authorization_out(authorization: Authorization) -> AuthorizationOut:
    return AuthorizationOut.model_validate(authorization, from_attributes=True)


@authorizations_router.get("")
async def list_authorizations(
    who: CurrentPrincipal,
    session: Session,
    page: PageRequest = Depends(page_request),
    connector: str | None = Query(default=None, max_length=63),
    type_: str | None = Query(default=None, alias="type", max_length=128),
) -> Page[AuthorizationOut]:
    """What `datapass` connectors created, oldest first."""
    rows = await ConnectorRepository(session).authorizations(
        who.tenant_id,
        after=cursor_uuid(page.after),
        limit=page.limit + 1,
        connector_id=connector,
        type_=type_,
    )
    return build_page(rows, page, lambda a: {"id": str(a.id)}, authorization_out)


@router.delete("/{connector_id}", status_code=204)
async def delete_connector(
    connector_id: SlugPath, who: CurrentPrincipal, connectors: ConnectorService = Service
) -> Response:
    await connectors.delete(who.tenant_id, connector_id)
    return Response(status_code=204)
