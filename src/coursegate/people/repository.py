"""All SQL about people and their identifiers."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from coursegate.models import Person, PersonIdentifier

_later = aliased(PersonIdentifier)


def _namespaces_of(tenant_id: str) -> Select[tuple[str | None]]:
    """The tenant's identifier namespaces, each found by one probe of the primary key
    `(tenant_id, namespace, value)` (a loose index scan, written as a recursive query
    because neither database skips through an index by itself): as many steps as there
    are namespaces, however many identifiers each holds."""
    first = select(func.min(PersonIdentifier.namespace).label("namespace")).where(
        PersonIdentifier.tenant_id == tenant_id
    )
    found = first.cte("namespaces", recursive=True)
    following = (
        select(func.min(_later.namespace))
        .where(_later.tenant_id == tenant_id, _later.namespace > found.c.namespace)
        .scalar_subquery()
    )
    found = found.union_all(select(following).where(found.c.namespace.is_not(None)))
    return select(found.c.namespace).where(found.c.namespace.is_not(None))


class PeopleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str, person_id: uuid.UUID) -> Person | None:
        return await self.session.get(Person, (tenant_id, person_id))

    async def identifiers_of(
        self, tenant_id: str, person_id: uuid.UUID
    ) -> Sequence[PersonIdentifier]:
        stmt = (
            select(PersonIdentifier)
            .where(PersonIdentifier.tenant_id == tenant_id, PersonIdentifier.person_id == person_id)
            .order_by(PersonIdentifier.namespace, PersonIdentifier.value)
        )
        return (await self.session.scalars(stmt)).all()

    async def taken(
        self, tenant_id: str, pairs: Sequence[tuple[str, str]]
    ) -> Sequence[PersonIdentifier]:
        """Which of these `(namespace, value)` pairs already name someone."""
        stmt = select(PersonIdentifier).where(
            PersonIdentifier.tenant_id == tenant_id,
            tuple_(PersonIdentifier.namespace, PersonIdentifier.value).in_(pairs),
        )
        return (await self.session.scalars(stmt)).all()

    async def add(self, person: Person, identifiers: Sequence[PersonIdentifier]) -> bool:
        """False, and nothing added, when a concurrent request took an identifier first.

        A savepoint keeps the transaction usable (PostgreSQL aborts it on a
        unique violation), so the caller can still say which one was taken.
        """
        try:
            async with self.session.begin_nested():
                self.session.add(person)
                await self.session.flush()
                self.session.add_all(identifiers)
                await self.session.flush()
        except IntegrityError:
            return False
        return True

    async def add_identifier(self, identifier: PersonIdentifier) -> bool:
        """False, and nothing added, when a concurrent request took the identifier first."""
        try:
            async with self.session.begin_nested():
                self.session.add(identifier)
                await self.session.flush()
        except IntegrityError:
            return False
        return True

    async def identifiers_of_many(
        self, tenant_id: str, person_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[PersonIdentifier]]:
        """The identifiers of each of these people, in one query."""
        found: dict[uuid.UUID, list[PersonIdentifier]] = {p: [] for p in person_ids}
        if not person_ids:
            return found
        stmt = (
            select(PersonIdentifier)
            .where(
                PersonIdentifier.tenant_id == tenant_id,
                PersonIdentifier.person_id.in_(list(person_ids)),
            )
            .order_by(
                PersonIdentifier.person_id, PersonIdentifier.namespace, PersonIdentifier.value
            )
        )
        for row in (await self.session.scalars(stmt)).all():
            found[row.person_id].append(row)
        return found

    async def listing(
        self,
        tenant_id: str,
        *,
        identifier: str | None = None,
        namespace: str | None = None,
        name_contains: str | None = None,
        after: uuid.UUID | None,
        limit: int,
    ) -> Sequence[Person]:
        """See `listing_statement`."""
        stmt = listing_statement(
            tenant_id,
            identifier=identifier,
            namespace=namespace,
            name_contains=name_contains,
            after=after,
            limit=limit,
        )
        return (await self.session.scalars(stmt)).all()


def listing_statement(
    tenant_id: str,
    *,
    identifier: str | None = None,
    namespace: str | None = None,
    name_contains: str | None = None,
    after: uuid.UUID | None = None,
    limit: int,
) -> Select[Person]:
    """People by id: those an identifier value names (in one namespace, or in any), or
    those whose name contains a text whatever its case, or all of them.

    An identifier is found through the primary key of `person_identifiers`, in each
    namespace when none is given. A name is matched by reading the tenant's people
    in id order (no index serves a substring on both databases), which stops as soon
    as the page is full.
    """
    stmt = select(Person).where(Person.tenant_id == tenant_id)
    if identifier is not None:
        matched = select(PersonIdentifier.person_id).where(
            PersonIdentifier.tenant_id == tenant_id, PersonIdentifier.value == identifier
        )
        if namespace is not None:
            matched = matched.where(PersonIdentifier.namespace == namespace)
        else:
            matched = matched.where(PersonIdentifier.namespace.in_(_namespaces_of(tenant_id)))
        stmt = stmt.where(Person.id.in_(matched))
    if name_contains is not None:
        stmt = stmt.where(func.lower(Person.name).contains(name_contains.lower(), autoescape=True))
    if after is not None:
        stmt = stmt.where(Person.id > after)
    return stmt.order_by(Person.id).limit(limit)
