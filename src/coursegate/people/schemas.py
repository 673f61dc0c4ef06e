"""People's JSON in and out."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pydantic import BaseModel, Field

from coursegate.kit.fields import Email, Namespace, StrictInput
from coursegate.kit.timefmt import Instant
from coursegate.models import Person, PersonIdentifier


class Identifier(StrictInput):
    namespace: Namespace
    value: str = Field(min_length=1, max_length=256)


class PersonCreate(StrictInput):
    identifiers: list[Identifier] = Field(min_length=1, max_length=20)
    name: str | None = Field(default=None, min_length=1, max_length=256)
    email: Email | None = None


class PersonOut(BaseModel):
    id: uuid.UUID
    name: str | None
    email: str | None
    identifiers: list[Identifier]
    created_at: Instant


def person_out(person: Person, identifiers: Sequence[PersonIdentifier]) -> PersonOut:
    return PersonOut(
        id=person.id,
        name=person.name,
        email=person.email,
        # Stored values are not input: read back as they are, never re-validated (a row
        # written before a rule was added must still read).
        identifiers=[
            Identifier.model_construct(namespace=i.namespace, value=i.value) for i in identifiers
        ],
        created_at=person.created_at,
    )
