"""Routes for providers and their keys."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Depends, Request

from coursegate.kit.contract import raises
from coursegate.kit.errors import AlreadyExists
from coursegate.kit.ids import SlugPath
from coursegate.kit.pagination import Page, PageRequest, build_page, cursor_text, page_request
from coursegate.models import Provider, ProviderKey
from coursegate.providers.repository import ProviderRepository
from coursegate.providers.schemas import (
    KeyCreate,
    KeyCreated,
    KeyOut,
    ProviderCreate,
    ProviderCreated,
    ProviderOut,
)
from coursegate.providers.service import CreatedKey, NewKey, ProviderService
from coursegate.web import ClockDep, CurrentPrincipal, Locate, Session

router = APIRouter(prefix="/v1/providers", tags=["providers"])


def inbound_path(provider: Provider) -> str:
    return f"/v1/inbound/{provider.tenant_id}/{provider.id}/completions"


def key_out(key: ProviderKey) -> KeyOut:
    return KeyOut(
        key_id=key.key_id,
        secret_ref=key.secret_ref,
        generated=key.secret_encrypted is not None,
        created_at=key.created_at,
        retired_at=key.retired_at,
    )


def key_created(created: CreatedKey) -> KeyCreated:
    return KeyCreated(**key_out(created.row).model_dump(), secret=created.secret)


def provider_out(provider: Provider, keys: Sequence[ProviderKey]) -> ProviderOut:
    return ProviderOut(
        id=provider.id,
        program_id=provider.program_id,
        scheme=provider.scheme,
        inbound_path=inbound_path(provider),
        keys=[key_out(k) for k in keys],
        created_at=provider.created_at,
    )


def service(request: Request, session: Session, clock: ClockDep) -> ProviderService:
    state = request.app.state
    return ProviderService(session, clock, state.secret_box, state.secret_stores)


Service = Depends(service)


@router.post("", status_code=201, responses=raises(AlreadyExists))
async def create_provider(
    body: ProviderCreate,
    who: CurrentPrincipal,
    locate: Locate,
    providers: ProviderService = Service,
) -> ProviderCreated:
    provider, keys = await providers.create(
        who.tenant_id,
        body.id,
        body.program_id,
        body.scheme,
        [NewKey(key_id=k.key_id, secret_ref=k.secret_ref) for k in body.keys],
    )
    out = provider_out(provider, [k.row for k in keys])
    locate(out.id)
    return ProviderCreated(**{**out.model_dump(), "keys": [key_created(k) for k in keys]})


@router.get("")
async def list_providers(
    who: CurrentPrincipal,
    session: Session,
    page: PageRequest = Depends(page_request),
) -> Page[ProviderOut]:
    repo = ProviderRepository(session)
    rows = await repo.list(who.tenant_id, after=cursor_text(page.after), limit=page.limit + 1)
    keys = await repo.keys_of(who.tenant_id, [p.id for p in rows[: page.limit]])
    return build_page(rows, page, lambda p: {"id": p.id}, lambda p: provider_out(p, keys[p.id]))


@router.get("/{provider_id}")
async def get_provider(
    provider_id: SlugPath, who: CurrentPrincipal, providers: ProviderService = Service
) -> ProviderOut:
    return provider_out(*await providers.get(who.tenant_id, provider_id))


@router.post("/{provider_id}/keys", status_code=201, responses=raises(AlreadyExists))
async def add_key(
    provider_id: SlugPath,
    body: KeyCreate,
    who: CurrentPrincipal,
    locate: Locate,
    providers: ProviderService = Service,
) -> KeyCreated:
    created = await providers.add_key(
        who.tenant_id, provider_id, NewKey(key_id=body.key_id, secret_ref=body.secret_ref)
    )
    locate(body.key_id)
    return key_created(created)


@router.delete("/{provider_id}/keys/{key_id}")
async def retire_key(
    provider_id: SlugPath,
    key_id: SlugPath,
    who: CurrentPrincipal,
    providers: ProviderService = Service,
) -> KeyOut:
    return key_out(await providers.retire_key(who.tenant_id, provider_id, key_id))
