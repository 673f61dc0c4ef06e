"""All SQL about people and their identifiers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.models import Person, PersonIdentifier


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
