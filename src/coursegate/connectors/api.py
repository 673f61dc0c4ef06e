"""Routes for connector configuration (SPEC §4, §7). The rules live in the service."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response

from coursegate.connectors.repository import ConnectorRepository
from coursegate.connectors.schemas import ConnectorCreate, ConnectorOut, ConnectorPatch
from coursegate.connectors.service import ConnectorService
from coursegate.kit.pagination import Page, PageRequest, build_page, cursor_text, page_request
from coursegate.models import Connector
from coursegate.web import ClockDep, CurrentPrincipal, Session

router = APIRouter(prefix="/v1/connectors", tags=["connectors"])


def connector_out(connector: Connector) -> ConnectorOut:
    return ConnectorOut(
        id=connector.id,
        kind=connector.kind,
        schedule=connector.schedule,
        config=connector.config,
        enabled=connector.enabled,
        watermark=connector.watermark,
        last_run=None,
        created_at=connector.created_at,
        updated_at=connector.updated_at,
    )


def service(request: Request, session: Session, clock: ClockDep) -> ConnectorService:
    state = request.app.state
    return ConnectorService(
        session,
        clock,
        state.secret_stores,
        allow_private=state.settings.allow_private_webhook_targets,
    )


Service = Depends(service)


@router.post("", status_code=201)
async def create_connector(
    body: ConnectorCreate, who: CurrentPrincipal, connectors: ConnectorService = Service
) -> ConnectorOut:
    return connector_out(await connectors.create(who.tenant_id, body))


@router.get("")
async def list_connectors(
    who: CurrentPrincipal,
    session: Session,
    page: PageRequest = Depends(page_request),
    kind: str | None = Query(default=None, max_length=16),
) -> Page[ConnectorOut]:
    rows = await ConnectorRepository(session).list(
        who.tenant_id, after=cursor_text(page.after), limit=page.limit + 1, kind=kind
    )
    return build_page(rows, page, lambda c: {"id": c.id}, connector_out)


@router.get("/{connector_id}")
async def get_connector(
    connector_id: str, who: CurrentPrincipal, connectors: ConnectorService = Service
) -> ConnectorOut:
    return connector_out(await connectors.get(who.tenant_id, connector_id))


@router.patch("/{connector_id}")
async def update_connector(
    connector_id: str,
    body: ConnectorPatch,
    who: CurrentPrincipal,
    connectors: ConnectorService = Service,
) -> ConnectorOut:
    return connector_out(await connectors.update(who.tenant_id, connector_id, body))


@router.delete("/{connector_id}", status_code=204)
async def delete_connector(
    connector_id: str, who: CurrentPrincipal, connectors: ConnectorService = Service
) -> Response:
    await connectors.delete(who.tenant_id, connector_id)
    return Response(status_code=204)
