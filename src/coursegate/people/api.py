"""Routes for people."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from coursegate.kit.contract import raises
from coursegate.kit.errors import AlreadyExists
from coursegate.kit.fields import NAMESPACE_SCHEMA
from coursegate.kit.ids import UuidPath, path_uuid
from coursegate.kit.pagination import Page, PageRequest, build_page, cursor_uuid, page_request
from coursegate.people.schemas import PersonCreate, PersonOut, person_out
from coursegate.people.service import TEXT_MAX_LENGTH, PeopleService
from coursegate.web import ClockDep, CurrentPrincipal, Locate, Session

router = APIRouter(prefix="/v1/people", tags=["people"])


@router.post("", status_code=201, responses=raises(AlreadyExists))
async def create_person(
    body: PersonCreate, who: CurrentPrincipal, session: Session, clock: ClockDep, locate: Locate
) -> PersonOut:
    person, identifiers = await PeopleService(session, clock).create(
        who.tenant_id,
        [(i.namespace, i.value) for i in body.identifiers],
        name=body.name,
        email=body.email,
    )
    locate(person.id)
    return person_out(person, identifiers)


@router.get("")
async def list_people(
    who: CurrentPrincipal,
    session: Session,
    clock: ClockDep,
    page: PageRequest = Depends(page_request),
    identifier: str | None = Query(
        default=None,
        description="an identifier value, matched exactly in any namespace",
        json_schema_extra={"minLength": 1, "maxLength": TEXT_MAX_LENGTH},
    ),
    namespace: str | None = Query(
        default=None,
        description="with `identifier`: only in this namespace",
        json_schema_extra=NAMESPACE_SCHEMA,
    ),
    q: str | None = Query(
        default=None,
        description="text the name contains, any case, at least 2 characters once trimmed",
        json_schema_extra={
            "pattern": r"^\s*\S[\s\S]*\S\s*$",
            "maxLength": TEXT_MAX_LENGTH,
        },
    ),
) -> Page[PersonOut]:
    """By id; everyone when no filter is given."""
    found = await PeopleService(session, clock).search(
        who.tenant_id,
        identifier=identifier,
        namespace=namespace,
        q=q,
        after=cursor_uuid(page.after),
        limit=page.limit + 1,
    )
    return build_page(found, page, lambda p: {"id": str(p.id)}, lambda p: p)


@router.get("/{person_id}")
async def get_person(
    person_id: UuidPath, who: CurrentPrincipal, session: Session, clock: ClockDep
) -> PersonOut:
    person, identifiers = await PeopleService(session, clock).get(
        who.tenant_id, path_uuid(person_id)
    )
    return person_out(person, identifiers)
