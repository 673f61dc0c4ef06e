"""Routes about the calling tenant and its API keys."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from coursegate.kit.ids import UuidPath, path_uuid
from coursegate.kit.pagination import Page, PageRequest, build_page, cursor_uuid, page_request
from coursegate.tenancy.repository import TenantRepository
from coursegate.tenancy.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    TenantOut,
    TenantPatch,
    WhoAmI,
    key_out,
    tenant_out,
)
from coursegate.tenancy.service import TenancyService
from coursegate.web import ClockDep, CurrentPrincipal, Locate, Session

router = APIRouter(prefix="/v1", tags=["tenancy"])


@router.get("/whoami")
async def whoami(who: CurrentPrincipal, session: Session, clock: ClockDep) -> WhoAmI:
    service = TenancyService(session, clock)
    tenant = await service.get_tenant(who.tenant_id)
    key = await service.get_key(who.tenant_id, who.key_id)
    return WhoAmI(tenant=tenant_out(tenant), api_key=key_out(key))


@router.get("/tenant")
async def get_tenant(who: CurrentPrincipal, session: Session, clock: ClockDep) -> TenantOut:
    return tenant_out(await TenancyService(session, clock).get_tenant(who.tenant_id))


@router.patch("/tenant")
async def patch_tenant(
    body: TenantPatch, who: CurrentPrincipal, session: Session, clock: ClockDep
) -> TenantOut:
    changes = body.model_dump(exclude_unset=True)
    tenant = await TenancyService(session, clock).update_tenant(who.tenant_id, changes=changes)
    return tenant_out(tenant)


@router.get("/api-keys")
async def list_keys(
    who: CurrentPrincipal, session: Session, page: PageRequest = Depends(page_request)
) -> Page[ApiKeyOut]:
    after = cursor_uuid(page.after)
    rows = await TenantRepository(session).list_keys(
        who.tenant_id, after=after, limit=page.limit + 1
    )
    return build_page(rows, page, lambda k: {"id": str(k.id)}, key_out)


@router.post("/api-keys", status_code=201)
async def create_key(
    body: ApiKeyCreate, who: CurrentPrincipal, session: Session, clock: ClockDep, locate: Locate
) -> ApiKeyCreated:
    key, plaintext = await TenancyService(session, clock).create_key(who.tenant_id, name=body.name)
    locate(key.id)
    return ApiKeyCreated(**key_out(key).model_dump(), key=plaintext)


@router.get("/api-keys/{key_id}")
async def get_key(
    key_id: UuidPath, who: CurrentPrincipal, session: Session, clock: ClockDep
) -> ApiKeyOut:
    return key_out(await TenancyService(session, clock).get_key(who.tenant_id, path_uuid(key_id)))


@router.delete("/api-keys/{key_id}")
async def revoke_key(
    key_id: UuidPath, who: CurrentPrincipal, session: Session, clock: ClockDep
) -> ApiKeyOut:
    key = await TenancyService(session, clock).revoke_key(who.tenant_id, path_uuid(key_id))
    return key_out(key)
