"""Routes of SPEC §5: webhook endpoints, their attempts, resend, replay and recover."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from coursegate.kit.contract import raises
from coursegate.kit.errors import ValidationFailed
from coursegate.kit.ids import UUID_SCHEMA, UuidPath, path_uuid
from coursegate.kit.pagination import Page, PageRequest, build_page, cursor_uuid, page_request
from coursegate.models import DeliveryAttempt, WebhookEndpoint
from coursegate.web import ClockDep, CurrentPrincipal, Locate, Session
from coursegate.webhooks.schemas import (
    AttemptOut,
    EndpointCreate,
    EndpointOut,
    EndpointUpdate,
    EndpointWithSecret,
    Queued,
    RecoverRequest,
    ReplayRequest,
    ResendOut,
)
from coursegate.webhooks.service import EndpointDisabled, WebhookService, WithSecret

router = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])


def endpoint_out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        event_types=endpoint.event_types,
        enrichments=endpoint.enrichments,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        failing_since=endpoint.failing_since,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def with_secret(created: WithSecret) -> EndpointWithSecret:
    return EndpointWithSecret(**endpoint_out(created.endpoint).model_dump(), secret=created.secret)


def attempt_out(row: DeliveryAttempt) -> AttemptOut:
    return AttemptOut(
        id=row.id,
        delivery_id=row.delivery_id,
        event_id=row.event_id,
        attempt=row.attempt,
        attempted_at=row.attempted_at,
        outcome=row.outcome,
        status_code=row.status_code,
        latency_ms=row.latency_ms,
        response_body=row.response_body,
        error_class=row.error_class,
    )


def service(request: Request, session: Session, clock: ClockDep) -> WebhookService:
    state = request.app.state
    return WebhookService(
        session,
        clock,
        state.secret_box,
        allow_private=state.settings.allow_private_webhook_targets,
    )


Service = Depends(service)


@router.post("", status_code=201)
async def create_endpoint(
    body: EndpointCreate, who: CurrentPrincipal, locate: Locate, webhooks: WebhookService = Service
) -> EndpointWithSecret:
    created = with_secret(await webhooks.create(who.tenant_id, body))
    locate(created.id)
    return created


@router.get("")
async def list_endpoints(
    who: CurrentPrincipal,
    webhooks: WebhookService = Service,
    page: PageRequest = Depends(page_request),
) -> Page[EndpointOut]:
    rows = await webhooks.list(who.tenant_id, after=cursor_uuid(page.after), limit=page.limit + 1)
    return build_page(rows, page, lambda e: {"id": str(e.id)}, endpoint_out)


@router.get("/{endpoint_id}")
async def get_endpoint(
    endpoint_id: UuidPath, who: CurrentPrincipal, webhooks: WebhookService = Service
) -> EndpointOut:
    return endpoint_out(await webhooks.get(who.tenant_id, path_uuid(endpoint_id)))


@router.patch("/{endpoint_id}")
async def update_endpoint(
    endpoint_id: UuidPath,
    body: EndpointUpdate,
    who: CurrentPrincipal,
    webhooks: WebhookService = Service,
) -> EndpointOut:
    return endpoint_out(await webhooks.update(who.tenant_id, path_uuid(endpoint_id), body))


@router.delete("/{endpoint_id}", status_code=204)
async def delete_endpoint(
    endpoint_id: UuidPath, who: CurrentPrincipal, webhooks: WebhookService = Service
) -> Response:
    await webhooks.delete(who.tenant_id, path_uuid(endpoint_id))
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret")
async def rotate_secret(
    endpoint_id: UuidPath, who: CurrentPrincipal, webhooks: WebhookService = Service
) -> EndpointWithSecret:
    return with_secret(await webhooks.rotate_secret(who.tenant_id, path_uuid(endpoint_id)))


@router.get("/{endpoint_id}/attempts")
async def list_attempts(
    endpoint_id: UuidPath,
    who: CurrentPrincipal,
    webhooks: WebhookService = Service,
    page: PageRequest = Depends(page_request),
    event_id: str | None = Query(default=None, max_length=64, json_schema_extra=UUID_SCHEMA),
    outcome: Literal["succeeded", "failed", "outcome_unknown"] | None = None,
) -> Page[AttemptOut]:
    event = None
    if event_id is not None:
        try:
            event = uuid.UUID(event_id)
        except ValueError:
            raise ValidationFailed.field("event_id", "invalid", "not an event id") from None
    rows = await webhooks.attempts(
        who.tenant_id,
        path_uuid(endpoint_id),
        event_id=event,
        outcome=outcome,
        before=cursor_uuid(page.after),
        limit=page.limit + 1,
    )
    return build_page(rows, page, lambda a: {"id": str(a.id)}, attempt_out)


@router.post(
    "/{endpoint_id}/messages/{event_id}/resend", status_code=202, responses=raises(EndpointDisabled)
)
async def resend_message(
    endpoint_id: UuidPath,
    event_id: UuidPath,
    who: CurrentPrincipal,
    webhooks: WebhookService = Service,
) -> ResendOut:
    event = path_uuid(event_id)
    delivery = await webhooks.resend(who.tenant_id, path_uuid(endpoint_id), event)
    return ResendOut(delivery_id=delivery, event_id=event)


@router.post("/{endpoint_id}/replay", status_code=202, responses=raises(EndpointDisabled))
async def replay(
    endpoint_id: UuidPath,
    body: ReplayRequest,
    who: CurrentPrincipal,
    webhooks: WebhookService = Service,
) -> Queued:
    return Queued(queued=await webhooks.replay(who.tenant_id, path_uuid(endpoint_id), body.since))


@router.post("/{endpoint_id}/recover", status_code=202, responses=raises(EndpointDisabled))
async def recover(
    endpoint_id: UuidPath,
    body: RecoverRequest,
    who: CurrentPrincipal,
    webhooks: WebhookService = Service,
) -> Queued:
    """Every message whose latest attempt since then failed, once more (SPEC §9); a message
    already queued again is not queued twice."""
    return Queued(queued=await webhooks.recover(who.tenant_id, path_uuid(endpoint_id), body.since))
