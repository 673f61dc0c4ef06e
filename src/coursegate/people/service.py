"""People's rules: identifiers are unique per tenant; a new identifier wakes parked reports."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.completions.parking import ParkingService
from coursegate.kit.clock import Clock
from coursegate.kit.errors import AlreadyExists, NotFound, ValidationFailed
from coursegate.kit.fields import check_field, check_namespace
from coursegate.kit.ids import uuid7
from coursegate.kit.pagination import DEFAULT_LIMIT
from coursegate.models import Person, PersonIdentifier
from coursegate.people.repository import PeopleRepository
from coursegate.people.schemas import PersonOut, person_out

NAME_SEARCH_MIN_LENGTH = 2
"""The shortest name text searched: short family names (Li, Wu, Ng) are two letters,
and one letter would match nearly everyone."""
TEXT_MAX_LENGTH = 256
"""As long as a name or an identifier value may be."""


class PeopleService:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.session = session
        self.repo = PeopleRepository(session)
        self.clock = clock

    async def create(
        self,
        tenant_id: str,
        identifiers: Sequence[tuple[str, str]],
        *,
        name: str | None = None,
        email: str | None = None,
    ) -> tuple[Person, list[PersonIdentifier]]:
        pairs = list(dict.fromkeys(identifiers))
        if taken := await self._taken(tenant_id, identifiers):
            raise AlreadyExists("an identifier already names another person", details=taken)
        now = self.clock.now()
        person = Person(tenant_id=tenant_id, id=uuid7(), name=name, email=email, created_at=now)
        rows = [
            PersonIdentifier(
                tenant_id=tenant_id, namespace=ns, value=value, person_id=person.id, created_at=now
            )
            for ns, value in pairs
        ]
        if not await self.repo.add(person, rows):
            # Another request claimed an identifier between the check and the insert.
            raise AlreadyExists(
                "an identifier already names another person",
                details=await self._taken(tenant_id, identifiers) or None,
            )
        # Reports that arrived before this person existed are replayed now, in
        # this transaction: the person and what they already completed appear together.
        await ParkingService(self.session, self.clock).replay_for(tenant_id, pairs)
        return person, rows

    async def _taken(
        self, tenant_id: str, identifiers: Sequence[tuple[str, str]]
    ) -> list[dict[str, str]]:
        """`identifiers.<index>` of each pair that names someone, indexing the caller's list."""
        taken = {(t.namespace, t.value) for t in await self.repo.taken(tenant_id, identifiers)}
        return [
            {"field": f"identifiers.{index}", "constraint": "taken"}
            for index, pair in enumerate(identifiers)
            if pair in taken
        ]

    async def get(
        self, tenant_id: str, person_id: uuid.UUID
    ) -> tuple[Person, Sequence[PersonIdentifier]]:
        person = await self.repo.get(tenant_id, person_id)
        if person is None:
            raise NotFound()
        return person, await self.repo.identifiers_of(tenant_id, person_id)

    async def search(
        self,
        tenant_id: str,
        *,
        identifier: str | None = None,
        namespace: str | None = None,
        q: str | None = None,
        after: uuid.UUID | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[PersonOut]:
        """People by id, `limit` at most after `after`: those an identifier value names
        exactly (in `namespace`, or in any namespace), or those whose name contains `q`
        whatever its case (at least two characters once trimmed), or everyone.

        Refuses both filters together, and a namespace without an identifier, as
        `ValidationFailed` on the field concerned.
        """
        if identifier is not None:
            if q is not None:
                raise ValidationFailed.field(
                    "q", "invalid", "search by identifier or by name, not both"
                )
            _check_length("identifier", identifier, 1)
            if namespace is not None:
                check_field(check_namespace, "namespace", namespace)
        elif namespace is not None:
            raise ValidationFailed.field(
                "identifier", "required", "namespace narrows a search by identifier"
            )
        name = None
        if q is not None:
            name = q.strip()
            _check_length("q", name, NAME_SEARCH_MIN_LENGTH)
        people = await self.repo.listing(
            tenant_id,
            identifier=identifier,
            namespace=namespace,
            name_contains=name,
            after=after,
            limit=limit,
        )
        identifiers = await self.repo.identifiers_of_many(tenant_id, [p.id for p in people])
        return [person_out(p, identifiers[p.id]) for p in people]

    async def find(self, tenant_id: str, namespace: str, value: str) -> uuid.UUID | None:
        """The person an identifier names, if any."""
        found = await self.repo.taken(tenant_id, [(namespace, value)])
        return found[0].person_id if found else None

    async def add_identifier(
        self, tenant_id: str, person_id: uuid.UUID, namespace: str, value: str
    ) -> None:
        """Give a person another identifier (a login, say); one that already names them
        is no change, one that names someone else is refused."""
        owner = await self.find(tenant_id, namespace, value)
        if owner == person_id:
            return
        if owner is not None or not await self.repo.add_identifier(
            PersonIdentifier(
                tenant_id=tenant_id,
                namespace=namespace,
                value=value,
                person_id=person_id,
                created_at=self.clock.now(),
            )
        ):
            raise AlreadyExists(f"this {namespace} already names another person")
        await ParkingService(self.session, self.clock).replay_for(tenant_id, [(namespace, value)])

    async def _create_or_find(
        self, tenant_id: str, namespace: str, value: str, name: str | None, email: str | None
    ) -> uuid.UUID:
        """A new person, or the one a concurrent request created with this identifier
        between our look and our insert."""
        try:
            person, _ = await self.create(tenant_id, [(namespace, value)], name=name, email=email)
        except AlreadyExists:
            winner = await self.find(tenant_id, namespace, value)
            if winner is None:
                raise
            return winner
        return person.id

    async def find_or_create(
        self, tenant_id: str, namespace: str, learners: Sequence[tuple[str, str | None, str | None]]
    ) -> list[uuid.UUID]:
        """The person each `(value, email, name)` names in `namespace`, created if new;
        a given email or name is recorded on the person."""
        existing = {
            row.value: row.person_id
            for row in await self.repo.taken(tenant_id, [(namespace, v) for v, _, _ in learners])
        }
        ids: list[uuid.UUID] = []
        for value, email, name in learners:
            person_id = existing.get(value)
            if person_id is None:
                ids.append(await self._create_or_find(tenant_id, namespace, value, name, email))
                continue
            found = await self.repo.get(tenant_id, person_id)
            assert found is not None
            if email is not None:
                found.email = email
            if name is not None and found.name is None:
                found.name = name
            ids.append(person_id)
        await self.session.flush()
        return ids


def _check_length(field: str, value: str, shortest: int) -> None:
    if len(value) > TEXT_MAX_LENGTH:
        raise ValidationFailed.field(field, "too_long", f"at most {TEXT_MAX_LENGTH} characters")
    if len(value) < shortest:
        raise ValidationFailed.field(field, "invalid", f"at least {shortest} characters")
