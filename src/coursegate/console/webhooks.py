"""Webhooks (SPEC §5, §9): the tenant's endpoints with their 24 h success rate, and per
endpoint its messages and their attempts, with resend, replay, recovery of failed
messages, disable/enable and secret rotation.

Every action goes through `WebhookService`, built by the API's own dependency, so
the console refuses exactly what the API refuses. Secrets (a new endpoint's, a
rotated one) are in the page that answers the form, once.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.console.web import (
    PREFIX,
    Actor,
    Admin,
    AdminViewer,
    Console,
    Viewer,
    recorded,
    render,
    when_seconds,
)
from coursegate.kit.errors import ValidationFailed
from coursegate.kit.fields import validated
from coursegate.kit.ids import path_uuid, query_uuid
from coursegate.kit.timefmt import format_instant
from coursegate.web import Session
from coursegate.webhooks.api import service
from coursegate.webhooks.catalogue import ALL, EVENT_TYPES
from coursegate.webhooks.consequences import FAILING, GONE, MANUAL
from coursegate.webhooks.queue import PENDING
from coursegate.webhooks.repository import AttemptCounts
from coursegate.webhooks.routing import EVENT
from coursegate.webhooks.schemas import EndpointCreate, EndpointUpdate
from coursegate.webhooks.service import Message, WebhookService

router = APIRouter()
Webhooks = Annotated[WebhookService, Depends(service)]

ENDPOINTS_SHOWN = 200
MESSAGES_PAGE = 25
RATE_WINDOW = timedelta(hours=24)
EXCERPT_CHARS = 300
SINCE_FORMAT = "%Y-%m-%dT%H:%M"
ENDPOINT = "webhook_endpoint"
MESSAGE = "webhook_message"

DISABLED_BECAUSE = {
    MANUAL: "disabled by an operator",
    GONE: "the receiver answered 410 Gone",
    FAILING: "every delivery attempt failed for 5 days",
}
# The form's labels, for refusals that name the API's fields.
LABELS = {"url": "URL", "event_types": "Event types", "description": "Description"}
EVENT_TYPE_CHOICES = (ALL, *sorted(EVENT_TYPES))


# The list of endpoints, and a new one


@router.get(f"{PREFIX}/webhooks", include_in_schema=False)
async def endpoints_page(
    request: Request, console: Viewer, webhooks: Webhooks, after: str | None = None
) -> HTMLResponse:
    tenant = console.tenant_id
    rows = await webhooks.list(tenant, after=query_uuid("after", after), limit=ENDPOINTS_SHOWN + 1)
    shown = rows[:ENDPOINTS_SHOWN]
    since = webhooks.clock.now() - RATE_WINDOW
    counts = await webhooks.attempt_counts(tenant, [e.id for e in shown], since)
    return render(
        request,
        "webhooks.html",
        {
            "title": "Webhooks",
            "active": "Webhooks",
            "endpoints": shown,
            "rates": {e.id: success_rate(counts.get(e.id)) for e in shown},
            "status": endpoint_status,
            "next_after": shown[-1].id if len(rows) > ENDPOINTS_SHOWN else None,
        },
    )


@router.get(f"{PREFIX}/webhooks/new", include_in_schema=False)
async def new_endpoint_page(request: Request, console: AdminViewer) -> HTMLResponse:
    return render(
        request,
        "webhook_new.html",
        {"title": "New endpoint", "active": "Webhooks", "choices": EVENT_TYPE_CHOICES},
    )


@router.post(f"{PREFIX}/webhooks", include_in_schema=False)
async def create_endpoint(
    request: Request,
    console: Admin,
    session: Session,
    webhooks: Webhooks,
    url: Annotated[str, Form(max_length=4096)] = "",
    event_types: Annotated[list[str] | None, Form()] = None,
    description: Annotated[str, Form(max_length=2048)] = "",
) -> HTMLResponse:
    async with recorded(request, session, console, "create", ENDPOINT, "new") as act:
        fields: dict[str, object] = {
            "url": url.strip(),
            "event_types": event_types or [],
            "description": description.strip() or None,
        }
        try:
            created = await webhooks.create(console.tenant_id, validated(EndpointCreate, fields))
        except ValidationFailed as exc:
            raise with_labels(exc) from None
        act.object_id = str(created.endpoint.id)
        act.detail = {"url": created.endpoint.url}
    response = await _endpoint_page(
        request,
        console,
        webhooks,
        created.endpoint.id,
        notice="Endpoint created. Copy its signing secret now: it is not shown again.",
        secret=created.secret,
    )
    if request.headers.get("hx-request"):
        # The form asked for refusals beside it; a success replaces the whole page.
        response.headers.update(
            {
                "HX-Retarget": "#main",
                "HX-Reselect": "#main",
                "HX-Reswap": "outerHTML",
                "HX-Push-Url": f"{PREFIX}/webhooks/{created.endpoint.id}",
            }
        )
    return response


# One endpoint: its messages and what can be done with them


@router.get(f"{PREFIX}/webhooks/{{endpoint_id}}", include_in_schema=False)
async def endpoint_page(
    request: Request,
    endpoint_id: str,
    console: Viewer,
    webhooks: Webhooks,
    before: str | None = None,
) -> HTMLResponse:
    return await _endpoint_page(
        request, console, webhooks, path_uuid(endpoint_id), before=query_uuid("before", before)
    )


@router.post(
    f"{PREFIX}/webhooks/{{endpoint_id}}/messages/{{event_id}}/resend", include_in_schema=False
)
async def resend(
    request: Request,
    endpoint_id: str,
    event_id: str,
    console: Actor,
    session: Session,
    webhooks: Webhooks,
) -> HTMLResponse:
    async with recorded(request, session, console, "resend", MESSAGE, event_id) as act:
        act.detail = {"endpoint_id": endpoint_id}
        endpoint = path_uuid(endpoint_id)
        await webhooks.resend(console.tenant_id, endpoint, path_uuid(event_id))
    outcome = "Queued again, with the same webhook-id."
    if request.headers.get("hx-request"):
        return render(request, "webhook_outcome.html", {"outcome": outcome})
    return await _endpoint_page(
        request, console, webhooks, endpoint, notice=f"Message {event_id}: {outcome}"
    )


SinceField = Annotated[str, Form(max_length=64)]


async def _queue_since(
    request: Request,
    endpoint_id: str,
    console: Console,
    session: AsyncSession,
    webhooks: WebhookService,
    since: str,
    *,
    verb: str,
) -> HTMLResponse:
    """Replay (every message since then) or recover (those whose latest attempt since then
    failed): the same form, the same record, the service's own rule."""
    async with recorded(request, session, console, verb, ENDPOINT, endpoint_id) as act:
        endpoint = path_uuid(endpoint_id)
        at = parse_since(since, console.timezone)
        queue = webhooks.replay if verb == "replay" else webhooks.recover
        queued = await queue(console.tenant_id, endpoint, at)
        act.detail = {"since": format_instant(at), "queued": queued}
    when = since_text(at, console.timezone)
    which = f"since {when}" if verb == "replay" else f"whose latest attempt since {when} failed,"
    notice = f"{_messages(queued)} {which} queued again."
    return await _endpoint_page(request, console, webhooks, endpoint, notice=notice, since=at)


@router.post(f"{PREFIX}/webhooks/{{endpoint_id}}/replay", include_in_schema=False)
async def replay(
    request: Request,
    endpoint_id: str,
    console: Actor,
    session: Session,
    webhooks: Webhooks,
    since: SinceField = "",
) -> HTMLResponse:
    return await _queue_since(
        request, endpoint_id, console, session, webhooks, since, verb="replay"
    )


@router.post(f"{PREFIX}/webhooks/{{endpoint_id}}/recover", include_in_schema=False)
async def recover(
    request: Request,
    endpoint_id: str,
    console: Actor,
    session: Session,
    webhooks: Webhooks,
    since: SinceField = "",
) -> HTMLResponse:
    return await _queue_since(
        request, endpoint_id, console, session, webhooks, since, verb="recover"
    )


@router.post(f"{PREFIX}/webhooks/{{endpoint_id}}/disable", include_in_schema=False)
async def disable(
    request: Request, endpoint_id: str, console: Admin, session: Session, webhooks: Webhooks
) -> HTMLResponse:
    return await _switch(request, endpoint_id, console, session, webhooks, enabled=False)


@router.post(f"{PREFIX}/webhooks/{{endpoint_id}}/enable", include_in_schema=False)
async def enable(
    request: Request, endpoint_id: str, console: Admin, session: Session, webhooks: Webhooks
) -> HTMLResponse:
    return await _switch(request, endpoint_id, console, session, webhooks, enabled=True)


@router.post(f"{PREFIX}/webhooks/{{endpoint_id}}/rotate-secret", include_in_schema=False)
async def rotate_secret(
    request: Request, endpoint_id: str, console: Admin, session: Session, webhooks: Webhooks
) -> HTMLResponse:
    async with recorded(request, session, console, "rotate_secret", ENDPOINT, endpoint_id):
        endpoint = path_uuid(endpoint_id)
        rotated = await webhooks.rotate_secret(console.tenant_id, endpoint)
    return await _endpoint_page(
        request,
        console,
        webhooks,
        endpoint,
        notice="Secret rotated. Copy the new one now: it is not shown again. "
        "The previous secret also signs for 24 hours.",
        secret=rotated.secret,
    )


async def _switch(
    request: Request,
    endpoint_id: str,
    console: Console,
    session: Session,
    webhooks: WebhookService,
    *,
    enabled: bool,
) -> HTMLResponse:
    verb = "enable" if enabled else "disable"
    async with recorded(request, session, console, verb, ENDPOINT, endpoint_id):
        endpoint = path_uuid(endpoint_id)
        await webhooks.update(console.tenant_id, endpoint, EndpointUpdate(enabled=enabled))
    notice = (
        "Endpoint enabled. Replay sends what it missed meanwhile."
        if enabled
        else "Endpoint disabled; its pending deliveries were canceled."
    )
    return await _endpoint_page(request, console, webhooks, endpoint, notice=notice)


async def _endpoint_page(
    request: Request,
    console: Console,
    webhooks: WebhookService,
    endpoint_id: uuid.UUID,
    *,
    before: uuid.UUID | None = None,
    notice: str | None = None,
    secret: str | None = None,
    since: datetime | None = None,
) -> HTMLResponse:
    tenant = console.tenant_id
    endpoint = await webhooks.get(tenant, endpoint_id)
    now = webhooks.clock.now()
    counts = await webhooks.attempt_counts(tenant, [endpoint.id], now - RATE_WINDOW)
    messages = await webhooks.messages(tenant, endpoint.id, before=before, limit=MESSAGES_PAGE + 1)
    shown = messages[:MESSAGES_PAGE]
    context: dict[str, Any] = {
        "title": f"Endpoint {endpoint.url}",
        "active": "Webhooks",
        "endpoint": endpoint,
        "status": endpoint_status(endpoint.enabled, endpoint.disabled_reason),
        "rate": success_rate(counts.get(endpoint.id)),
        "messages": shown,
        "state": message_state,
        "origins": {d.id: d.origin for m in shown for d in m.deliveries},
        "older": shown[-1].head.event_id if len(messages) > MESSAGES_PAGE else None,
        "paged": before is not None,
        "since": since_value(since or now - RATE_WINDOW, console.timezone),
        "notice": notice,
        "secret": secret,
        "excerpt_chars": EXCERPT_CHARS,
    }
    return render(request, "webhook.html", context)


# Reading the forms, and saying what the figures are


def parse_since(value: str, zone: str) -> datetime:
    """A `datetime-local` value (no offset) read as a wall time of the tenant's timezone.

    An ambiguous wall time (the hour repeated when clocks go back) is its first
    occurrence, so "since" covers the whole repeated hour.
    """
    try:
        local = datetime.fromisoformat(value.strip())
    except ValueError:
        local = None
    if local is None or local.tzinfo is not None:
        raise ValidationFailed(
            f"Since: a date and time such as 2026-06-10T08:00, in {zone}",
            details=[{"field": "since", "constraint": "invalid"}],
        )
    return local.replace(tzinfo=ZoneInfo(zone), fold=0)


def since_value(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime(SINCE_FORMAT)


def since_text(at: datetime, zone: str) -> str:
    return f"{at.astimezone(ZoneInfo(zone)).strftime('%Y-%m-%d %H:%M')} ({zone})"


def with_labels(exc: ValidationFailed) -> ValidationFailed:
    """The same refusal, its message naming the form's fields as the operator sees them."""
    parts = []
    for detail in exc.details or []:
        field = str(detail.get("field", ""))
        label = LABELS.get(field.split(".")[0], field)
        parts.append(f"{label}: {detail.get('message') or detail.get('constraint')}")
    return ValidationFailed("; ".join(parts) or exc.message, details=exc.details)


def message_state(message: Message, zone: str) -> str:
    """Where the message's latest delivery stands, in an operator's words."""
    latest = message.deliveries[0]
    if latest.status != PENDING:
        return latest.status
    if latest.attempts == 0:
        return "queued" if latest.origin == EVENT else f"queued ({latest.origin})"
    return f"retrying at {when_seconds(latest.next_attempt_at, zone)}"


def endpoint_status(enabled: bool, reason: str | None) -> str:
    if enabled:
        return "Enabled"
    return f"Disabled: {DISABLED_BECAUSE.get(reason or '', reason or 'no reason recorded')}"


def success_rate(counts: AttemptCounts | None) -> str:
    """Succeeded attempts out of all, rounded down so a failure never reads as 100 %."""
    if counts is None or counts.attempted == 0:
        return "no attempts"
    percent = math.floor(1000 * counts.succeeded / counts.attempted) / 10
    figure = f"{percent:.1f}".removesuffix(".0")
    return f"{figure} % ({counts.succeeded} of {counts.attempted})"


def _messages(count: int) -> str:
    return "1 message" if count == 1 else f"{count} messages"
