"""Routes for people."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter

from coursegate.kit.ids import path_uuid
from coursegate.models import Person, PersonIdentifier
from coursegate.people.schemas import Identifier, PersonCreate, PersonOut
from coursegate.people.service import PeopleService
from coursegate.web import ClockDep, CurrentPrincipal, Session

router = APIRouter(prefix="/v1/people", tags=["people"])


def person_out(person: Person, identifiers: Sequence[PersonIdentifier]) -> PersonOut:
    return PersonOut(
        id=person.id,
        name=person.name,
        email=person.email,
        identifiers=[Identifier(namespace=i.namespace, value=i.value) for i in identifiers],
        created_at=person.created_at,
    )


@router.post("", status_code=201)
async def create_person(
    body: PersonCreate, who: CurrentPrincipal, session: Session, clock: ClockDep
) -> PersonOut:
    person, identifiers = await PeopleService(session, clock).create(
        who.tenant_id,
        [(i.namespace, i.value) for i in body.identifiers],
        name=body.name,
        email=body.email,
    )
    return person_out(person, identifiers)


@router.get("/{person_id}")
async def get_person(
    person_id: str, who: CurrentPrincipal, session: Session, clock: ClockDep
) -> PersonOut:
    person, identifiers = await PeopleService(session, clock).get(
        who.tenant_id, path_uuid(person_id)
    )
    return person_out(person, identifiers)
