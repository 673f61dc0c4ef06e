"""Routes: the partner-facing inbound endpoint, the admin reads of completions and audit, and
parked reports with their replay."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from coursegate.completions.errors import AlreadyCompleted, IdempotencyKeyReused, PersonNotFound
from coursegate.completions.inbound import InboundGateway, signed_path
from coursegate.completions.parking import ParkingService
from coursegate.completions.payload import MAX_CONTENT_HOURS
from coursegate.completions.repository import CompletionReads
from coursegate.completions.schemas import (
    AuditOut,
    CompletionOut,
    ParkedOut,
    ReplayOut,
    parked_out,
)
from coursegate.kit.contract import raises
from coursegate.kit.errors import (
    DatabaseUnavailable,
    InvalidJson,
    PayloadTooLarge,
    Unauthorized,
    ValidationFailed,
)
from coursegate.kit.ids import UUID_SCHEMA, SlugPath, UuidPath, path_uuid, query_uuid
from coursegate.kit.pagination import Page, PageRequest, build_page, cursor_uuid, page_request
from coursegate.web import ClockDep, CurrentPrincipal, Session

router = APIRouter(tags=["completions"])


SIGNATURE_HEADERS = (
    (
        "Authorization",
        "`hmac-authorization` scheme: `HMAC-SHA256 KeyId=…, Signature=…, Timestamp=…`",
    ),
    ("webhook-id", "`standard-webhooks` scheme: the message id, also the idempotency key"),
    ("webhook-timestamp", "`standard-webhooks` scheme: unix seconds, within 300 s of ours"),
    ("webhook-signature", "`standard-webhooks` scheme: `v1,<base64>`, space-separated"),
)
"""One scheme per provider, so each header is optional here and required by its scheme."""

REPORT_SCHEMA = {
    "type": "object",
    "required": ["person_id", "state_code", "course_id", "content_hours", "completed_at"],
    "properties": {
        "person_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "state_code": {"type": "string", "minLength": 1, "maxLength": 32},
        "course_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "course_name": {"type": ["string", "null"], "maxLength": 512},
        "content_hours": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": int(MAX_CONTENT_HOURS),
            "multipleOf": 0.01,
        },
        "completed_at": {"type": "string", "format": "date-time"},
    },
    "description": "SPEC §2; unknown fields are ignored.",
}
OUTCOME_SCHEMA = {
    "type": "object",
    "required": ["status", "completion_id"],
    "properties": {
        "status": {"type": "string", "enum": ["accepted", "duplicate"]},
        "completion_id": {"type": "string", "format": "uuid"},
        "hours_total": {"type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$"},
        "credits_awarded": {"type": "integer", "minimum": 0},
        "credits_total": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}


@router.post(
    "/v1/inbound/{tenant_id}/{provider_id}/completions",
    responses={
        200: {
            "description": "A duplicate of a completion already recorded.",
            "content": {"application/json": {"schema": OUTCOME_SCHEMA}},
        },
        201: {
            "description": "The completion was recorded.",
            "content": {"application/json": {"schema": OUTCOME_SCHEMA}},
        },
        **raises(
            InvalidJson,
            ValidationFailed,
            Unauthorized,
            PayloadTooLarge,
            PersonNotFound,
            AlreadyCompleted,
            IdempotencyKeyReused,
            DatabaseUnavailable,
        ),
    },
    openapi_extra={
        "parameters": [
            {"name": name, "in": "header", "required": False, "description": text}
            | {"schema": {"type": "string", "maxLength": 1024}}
            for name, text in SIGNATURE_HEADERS
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": REPORT_SCHEMA}},
        },
    },
)
async def receive_completion(
    tenant_id: SlugPath, provider_id: SlugPath, request: Request
) -> JSONResponse:
    """A provider reports a completion; signed, see SPEC §2 for the schemes and outcomes."""
    body = await request.body()
    path = signed_path(request.scope)
    gateway: InboundGateway = request.app.state.inbound
    response = await gateway.handle(
        tenant_id,
        provider_id,
        method=request.method,
        path=path,
        headers=request.headers,
        body=body,
    )
    return JSONResponse(response.body, status_code=response.status)


@router.get("/v1/completions")
async def list_completions(
    who: CurrentPrincipal,
    session: Session,
    page: PageRequest = Depends(page_request),
    person: str | None = Query(default=None, max_length=64, json_schema_extra=UUID_SCHEMA),
    program: str | None = Query(default=None, max_length=63),
    provider: str | None = Query(default=None, max_length=63),
    course_id: str | None = Query(default=None, max_length=128),
) -> Page[CompletionOut]:
    filters = {
        name: value
        for name, value in {
            "person_id": query_uuid("person", person),
            "program_id": program,
            "provider_id": provider,
            "course_id": course_id,
        }.items()
        if value is not None
    }
    rows = await CompletionReads(session).completions(
        who.tenant_id, filters=filters, after=cursor_uuid(page.after), limit=page.limit + 1
    )
    return build_page(
        rows,
        page,
        lambda c: {"id": str(c.id)},
        lambda c: CompletionOut.model_validate(c, from_attributes=True),
    )


@router.get("/v1/inbound/audit")
async def list_audit(
    who: CurrentPrincipal,
    session: Session,
    page: PageRequest = Depends(page_request),
    provider: str | None = Query(default=None, max_length=63),
    outcome: str | None = Query(default=None, max_length=32),
) -> Page[AuditOut]:
    """Newest first."""
    filters = {
        name: value
        for name, value in {"provider_id": provider, "outcome": outcome}.items()
        if value is not None
    }
    rows = await CompletionReads(session).audit(
        who.tenant_id, filters=filters, before=cursor_uuid(page.after), limit=page.limit + 1
    )
    return build_page(
        rows,
        page,
        lambda a: {"id": str(a.id)},
        lambda a: AuditOut.model_validate(a, from_attributes=True),
    )


@router.get("/v1/inbound/parked")
async def list_parked(
    who: CurrentPrincipal,
    session: Session,
    clock: ClockDep,
    page: PageRequest = Depends(page_request),
    open_only: bool = Query(default=False, alias="open"),
) -> Page[ParkedOut]:
    """Newest first, as the audit; `open=true` leaves out the resolved ones."""
    rows = await ParkingService(session, clock).parked(
        who.tenant_id, open_only=open_only, before=cursor_uuid(page.after), limit=page.limit + 1
    )
    return build_page(rows, page, lambda p: {"id": str(p.id)}, parked_out)


@router.post("/v1/inbound/parked/{parked_id}/replay")
async def replay_parked(
    parked_id: UuidPath, who: CurrentPrincipal, session: Session, clock: ClockDep
) -> ReplayOut:
    """Replay one parked report now, as `coursegate replay parked` does; 200 with its
    outcome whatever it is. One resolved before is not replayed again (`replayed` false)."""
    result = await ParkingService(session, clock).replay_one(who.tenant_id, path_uuid(parked_id))
    return ReplayOut(
        outcome=result.outcome, replayed=result.replayed, parked=parked_out(result.parked)
    )
