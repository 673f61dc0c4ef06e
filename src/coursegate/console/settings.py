"""Settings (admin only): the tenant's timezone and contact email, API keys, operators.

Secrets (a new API key, a new operator's password) are in the page that answers
the form, once; they are never stored in clear and never shown again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.console.web import PREFIX, Admin, AdminViewer, Console, recorded, render
from coursegate.kit.clock import Clock
from coursegate.kit.fields import validated
from coursegate.kit.ids import path_uuid
from coursegate.operators.service import OperatorService
from coursegate.tenancy.repository import TenantRepository
from coursegate.tenancy.schemas import ApiKeyCreate, TenantPatch
from coursegate.tenancy.service import TenancyService
from coursegate.web import ClockDep, Session

router = APIRouter()
KEYS_SHOWN = 500
FIELD = 320


async def _page(
    request: Request,
    console: Console,
    session: AsyncSession,
    now: Clock,
    *,
    notice: str | None = None,
    secret: dict[str, str] | None = None,
) -> HTMLResponse:
    tenant = await TenancyService(session, now).get_tenant(console.tenant_id)
    keys = await TenantRepository(session).list_keys(
        console.tenant_id, after=None, limit=KEYS_SHOWN
    )
    operators = await OperatorService(session, now).all(console.tenant_id)
    context: dict[str, Any] = {
        "title": "Settings",
        "active": "Settings",
        "tenant": tenant,
        "keys": keys,
        "operators": operators,
        "notice": notice,
        "secret": secret,
        "roles": ("viewer", "operator", "admin"),
    }
    return render(request, "settings.html", context)


@router.get(f"{PREFIX}/settings", include_in_schema=False)
async def settings_page(
    request: Request, console: AdminViewer, session: Session, now: ClockDep
) -> HTMLResponse:
    return await _page(request, console, session, now)


@router.post(f"{PREFIX}/settings/tenant", include_in_schema=False)
async def save_tenant(
    request: Request,
    console: Admin,
    session: Session,
    now: ClockDep,
    timezone: Annotated[str, Form(max_length=64)],
    contact_email: Annotated[str, Form(max_length=FIELD)] = "",
) -> HTMLResponse:
    async with recorded(request, session, console, "update", "tenant", console.tenant_id) as act:
        patch = validated(
            TenantPatch,
            {"timezone": timezone.strip(), "contact_email": contact_email.strip() or None},
        )
        changes = patch.model_dump(exclude_unset=True)
        await TenancyService(session, now).update_tenant(console.tenant_id, changes=changes)
        act.detail = {k: v for k, v in changes.items() if v is not None}
    console.timezone = patch.timezone or console.timezone
    return await _page(request, console, session, now, notice="Settings saved.")


@router.post(f"{PREFIX}/settings/api-keys", include_in_schema=False)
async def create_key(
    request: Request,
    console: Admin,
    session: Session,
    now: ClockDep,
    name: Annotated[str, Form(max_length=128)] = "api key",
) -> HTMLResponse:
    async with recorded(request, session, console, "create", "api_key", "new") as act:
        body = validated(ApiKeyCreate, {"name": name.strip() or "api key"})
        service = TenancyService(session, now)
        key, plaintext = await service.create_key(console.tenant_id, name=body.name)
        act.object_id = str(key.id)
        act.detail = {"name": key.name}
    return await _page(
        request,
        console,
        session,
        now,
        notice=f"API key {key.name} created. Copy it now: it is not shown again.",
        secret={"label": "New API key", "value": plaintext},
    )


@router.post(f"{PREFIX}/settings/api-keys/{{key_id}}/revoke", include_in_schema=False)
async def revoke_key(
    request: Request, key_id: str, console: Admin, session: Session, now: ClockDep
) -> HTMLResponse:
    async with recorded(request, session, console, "revoke", "api_key", key_id):
        key = await TenancyService(session, now).revoke_key(console.tenant_id, path_uuid(key_id))
    return await _page(request, console, session, now, notice=f"API key {key.name} revoked.")


@router.post(f"{PREFIX}/settings/operators", include_in_schema=False)
async def add_operator(
    request: Request,
    console: Admin,
    session: Session,
    now: ClockDep,
    email: Annotated[str, Form(max_length=FIELD)],
    role: Annotated[str, Form(max_length=16)],
) -> HTMLResponse:
    async with recorded(request, session, console, "add", "operator", email) as act:
        operator, password = await OperatorService(session, now).create(
            console.tenant_id, email, role
        )
        act.object_id = str(operator.id)
        act.detail = {"email": operator.email, "role": operator.role}
    return await _page(
        request,
        console,
        session,
        now,
        notice=f"Operator {operator.email} added as {operator.role}. "
        "Give them this password now: it is not shown again.",
        secret={"label": f"Password for {operator.email}", "value": password},
    )


@router.post(f"{PREFIX}/settings/operators/{{operator_id}}/disable", include_in_schema=False)
async def disable_operator(
    request: Request, operator_id: str, console: Admin, session: Session, now: ClockDep
) -> HTMLResponse:
    async with recorded(request, session, console, "disable", "operator", operator_id) as act:
        operator = await OperatorService(session, now).disable(
            console.tenant_id, str(path_uuid(operator_id))
        )
        act.detail = {"email": operator.email}
    return await _page(
        request, console, session, now, notice=f"Operator {operator.email} disabled."
    )
