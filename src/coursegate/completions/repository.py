"""All SQL of inbound completions, in as few statements as the work allows."""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from coursegate.kit.sql import dialect_insert, dialect_of
from coursegate.models import (
    Completion,
    IdempotencyKey,
    InboundAudit,
    ParkedRequest,
    PersonIdentifier,
    Program,
    Provider,
    ProviderKey,
    Tenant,
)
from coursegate.models.base import UtcDateTime, table_of

_COMPLETIONS = table_of(Completion)
_IDEMPOTENCY = table_of(IdempotencyKey)
_AUDIT_INSERT = insert(table_of(InboundAudit))


@dataclass(frozen=True, slots=True)
class KeySecret:
    key_id: str
    secret_ref: str | None
    secret_encrypted: str | None


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """What handling a provider's request needs, read in one query."""

    tenant_id: str
    provider_id: str
    scheme: str
    program_id: str
    jurisdiction: str
    hours_per_credit: Decimal
    namespace: str
    keys: tuple[KeySecret, ...]
    """The provider's active keys only; a retired key is simply not here."""


@dataclass(frozen=True, slots=True)
class PersonRef:
    id: uuid.UUID
    identifiers: tuple[tuple[str, str], ...]

    def as_event(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "identifiers": [{"namespace": ns, "value": v} for ns, v in self.identifiers],
        }


@dataclass(frozen=True, slots=True)
class StoredCompletion:
    id: uuid.UUID
    content_digest: str


_CONTEXT = (
    select(
        Provider.scheme,
        Program.id.label("program_id"),
        Program.jurisdiction,
        Program.hours_per_credit,
        Program.identifier_namespace,
        ProviderKey.key_id,
        ProviderKey.secret_ref,
        ProviderKey.secret_encrypted,
    )
    .join(Program, and_(Program.tenant_id == Provider.tenant_id, Program.id == Provider.program_id))
    .outerjoin(
        ProviderKey,
        and_(
            ProviderKey.tenant_id == Provider.tenant_id,
            ProviderKey.provider_id == Provider.id,
            ProviderKey.retired_at.is_(None),
        ),
    )
)

_match = aliased(PersonIdentifier)
_PERSON = (
    select(PersonIdentifier.person_id, PersonIdentifier.namespace, PersonIdentifier.value)
    .join(
        _match,
        and_(
            _match.tenant_id == PersonIdentifier.tenant_id,
            _match.person_id == PersonIdentifier.person_id,
        ),
    )
    .order_by(PersonIdentifier.namespace, PersonIdentifier.value)
)


@functools.cache  # built once per dialect
def _insert_completion(dialect: str) -> Any:
    return (
        dialect_insert(dialect, _COMPLETIONS).on_conflict_do_nothing().returning(_COMPLETIONS.c.id)
    )


@functools.cache
def _insert_idempotency(dialect: str) -> Any:
    stmt = dialect_insert(dialect, _IDEMPOTENCY)
    # An expired key may be taken again: the row is replaced only then.
    return stmt.on_conflict_do_update(
        index_elements=[_IDEMPOTENCY.c.tenant_id, _IDEMPOTENCY.c.provider_id, _IDEMPOTENCY.c.key],
        set_={
            "content_digest": stmt.excluded.content_digest,
            "completion_id": stmt.excluded.completion_id,
            "expires_at": stmt.excluded.expires_at,
        },
        where=_IDEMPOTENCY.c.expires_at <= bindparam("now", type_=UtcDateTime()),
    ).returning(_IDEMPOTENCY.c.key)


def identifier_digest(value: str) -> str:
    """Parked requests are found by a digest of the partner's person id, not the id itself."""
    return hashlib.sha256(value.encode()).hexdigest()


class CompletionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = dialect_of(session)

    async def provider_context(self, tenant_id: str, provider_id: str) -> ProviderContext | None:
        rows = (
            await self.session.execute(
                _CONTEXT.where(Provider.tenant_id == tenant_id, Provider.id == provider_id)
            )
        ).all()
        if not rows:
            return None
        first = rows[0]
        return ProviderContext(
            tenant_id=tenant_id,
            provider_id=provider_id,
            scheme=first.scheme,
            program_id=first.program_id,
            jurisdiction=first.jurisdiction,
            hours_per_credit=first.hours_per_credit,
            namespace=first.identifier_namespace,
            keys=tuple(
                KeySecret(r.key_id, r.secret_ref, r.secret_encrypted)
                for r in rows
                if r.key_id is not None
            ),
        )

    async def tenant_exists(self, tenant_id: str) -> bool:
        return await self.session.get(Tenant, tenant_id) is not None

    async def find_person(self, tenant_id: str, namespace: str, value: str) -> PersonRef | None:
        """The person an identifier names, with all their identifiers (for event payloads)."""
        rows = (
            await self.session.execute(
                _PERSON.where(
                    _match.tenant_id == tenant_id,
                    _match.namespace == namespace,
                    _match.value == value,
                )
            )
        ).all()
        if not rows:
            return None
        return PersonRef(
            id=rows[0].person_id, identifiers=tuple((r.namespace, r.value) for r in rows)
        )

    async def insert_completion(self, values: dict[str, Any]) -> bool:
        """Insert unless this person already has this provider course; True if inserted."""
        result = await self.session.execute(_insert_completion(self.dialect), values)
        return result.first() is not None

    async def completion_for_course(
        self,
        tenant_id: str,
        program_id: str,
        person_id: uuid.UUID,
        provider_id: str,
        course_id: str,
    ) -> StoredCompletion:
        row = (
            await self.session.execute(
                select(Completion.id, Completion.content_digest).where(
                    Completion.tenant_id == tenant_id,
                    Completion.program_id == program_id,
                    Completion.person_id == person_id,
                    Completion.provider_id == provider_id,
                    Completion.course_id == course_id,
                )
            )
        ).one()
        return StoredCompletion(id=row.id, content_digest=row.content_digest)

    async def idempotency(
        self, tenant_id: str, provider_id: str, key: str, now: datetime
    ) -> StoredCompletion | None:
        row = (
            await self.session.execute(
                select(IdempotencyKey.completion_id, IdempotencyKey.content_digest).where(
                    IdempotencyKey.tenant_id == tenant_id,
                    IdempotencyKey.provider_id == provider_id,
                    IdempotencyKey.key == key,
                    IdempotencyKey.expires_at > now,
                )
            )
        ).first()
        return (
            None
            if row is None
            else StoredCompletion(id=row.completion_id, content_digest=row.content_digest)
        )

    async def remember_idempotency(self, values: dict[str, Any], now: datetime) -> bool:
        """Keep a key; False if a live one with that name appeared meanwhile."""
        result = await self.session.execute(
            _insert_idempotency(self.dialect), {**values, "now": now}
        )
        return result.first() is not None

    async def audit(self, values: dict[str, Any]) -> None:
        await self.session.execute(_AUDIT_INSERT, values)

    async def park(self, parked: ParkedRequest) -> None:
        self.session.add(parked)
        await self.session.flush()

    async def waiting(
        self, tenant_id: str, pairs: Sequence[tuple[str, str]] | None
    ) -> Sequence[ParkedRequest]:
        """Unresolved parked requests, oldest first; of these identifiers only, when given."""
        stmt = select(ParkedRequest).where(
            ParkedRequest.tenant_id == tenant_id, ParkedRequest.resolved_at.is_(None)
        )
        if pairs is not None:
            stmt = stmt.where(
                tuple_(ParkedRequest.namespace, ParkedRequest.person_digest).in_(
                    [(ns, identifier_digest(v)) for ns, v in pairs]
                )
            )
        return (await self.session.scalars(stmt.order_by(ParkedRequest.id))).all()

    async def parked_for_update(self, tenant_id: str, parked_id: uuid.UUID) -> ParkedRequest | None:
        """One parked request, locked until the transaction ends (on PostgreSQL; SQLite's
        one writer already excludes others), read afresh: a replay of it that committed
        meanwhile is seen."""
        stmt = (
            select(ParkedRequest)
            .where(ParkedRequest.tenant_id == tenant_id, ParkedRequest.id == parked_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).first()


class CompletionReads:
    """The read side: lists for the admin API, newest or oldest first by time-ordered id."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def completions(
        self,
        tenant_id: str,
        *,
        filters: dict[str, Any],
        after: uuid.UUID | None,
        limit: int,
        newest_first: bool = False,
    ) -> Sequence[Completion]:
        """Oldest first after a cursor (the API), or newest first before one (the console)."""
        stmt = select(Completion).where(Completion.tenant_id == tenant_id)
        for name, value in filters.items():
            stmt = stmt.where(getattr(Completion, name) == value)
        if newest_first:
            if after is not None:
                stmt = stmt.where(Completion.id < after)
            stmt = stmt.order_by(Completion.id.desc())
        else:
            if after is not None:
                stmt = stmt.where(Completion.id > after)
            stmt = stmt.order_by(Completion.id)
        return (await self.session.scalars(stmt.limit(limit))).all()

    async def audit(
        self,
        tenant_id: str,
        *,
        filters: dict[str, Any],
        before: uuid.UUID | None,
        limit: int,
    ) -> Sequence[InboundAudit]:
        stmt = select(InboundAudit).where(InboundAudit.tenant_id == tenant_id)
        for name, value in filters.items():
            stmt = stmt.where(getattr(InboundAudit, name) == value)
        if before is not None:
            stmt = stmt.where(InboundAudit.id < before)
        return (
            await self.session.scalars(stmt.order_by(InboundAudit.id.desc()).limit(limit))
        ).all()

    async def parked(
        self,
        tenant_id: str,
        *,
        open_only: bool,
        before: uuid.UUID | None,
        limit: int,
    ) -> Sequence[ParkedRequest]:
        """Newest first, as the audit."""
        stmt = select(ParkedRequest).where(ParkedRequest.tenant_id == tenant_id)
        if open_only:
            stmt = stmt.where(ParkedRequest.resolved_at.is_(None))
        if before is not None:
            stmt = stmt.where(ParkedRequest.id < before)
        return (
            await self.session.scalars(stmt.order_by(ParkedRequest.id.desc()).limit(limit))
        ).all()
