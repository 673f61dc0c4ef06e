"""Where a completion's writes go: two shapes of the same work.

`record` needs, for a new completion, to find the person, insert the
completion, add its hours to the person's totals under the row lock, then
write the credits, the events and the audit row. On PostgreSQL that is two
statements on the raw driver (one CTE claims, one CTE writes the effects),
because round trips and per-statement Python overhead are what the request
costs. SQLite has no data-modifying CTEs and no network round trips, so it
runs the same steps as plain statements. Both shapes run under the same
tests.

The common request (a new completion, no idempotency key, no enrollment it
completes) has a third shape on PostgreSQL: `record_at_once`, the whole
write as ONE statement outside any transaction, so neither BEGIN nor COMMIT
costs a round trip. A statement is atomic by itself; whatever it cannot
settle alone (a conflict, an enrollment to complete) it leaves untouched, and
the steps above run in a transaction instead.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from coursegate.completions.repository import (
    CompletionRepository,
    KeySecret,
    PersonRef,
    ProviderContext,
    StoredCompletion,
)
from coursegate.credits.repository import CreditRepository
from coursegate.enrollments import lifecycle
from coursegate.enrollments.repository import EnrollmentRepository
from coursegate.events.outbox import NewEvent, record_events
from coursegate.kit.ids import uuid7
from coursegate.kit.sql import dialect_of, driver_connection
from coursegate.models import Enrollment
from coursegate.models.base import from_hundredths, to_hundredths


@dataclass(frozen=True, slots=True)
class NewCompletion:
    tenant_id: str
    id: uuid.UUID
    program_id: str
    provider_id: str
    course_id: str
    course_name: str | None
    content_hours: Decimal
    completed_at: datetime
    recorded_at: datetime
    content_digest: str
    hours_per_credit: Decimal


@dataclass(frozen=True, slots=True)
class Claim:
    person: PersonRef | None
    inserted: bool
    hours_total: Decimal | None
    """The person's new pooled hours, when the completion was inserted."""
    enrollment: Enrollment | None = None
    """The live enrollment this new completion completed, if one matched (SPEC §3)."""


@dataclass(frozen=True, slots=True)
class AtOnce:
    """Everything a new completion writes, prepared before knowing the person's totals.

    The statement fills in what only the database knows: the person (id and
    identifiers) in both events, and for each credit crossed its sequence and
    the new totals. So ids are made for the most credits one completion can
    cross, and the unused ones are dropped.
    """

    completion: NewCompletion
    namespace: str
    person_value: str
    credit_ids: Sequence[uuid.UUID]
    event_ids: Sequence[uuid.UUID]
    """One more than `credit_ids`: the completion's event first, then one per credit."""
    recorded: dict[str, Any]
    """`completion.recorded`'s data but `person`."""
    earned: dict[str, Any]
    """What every `credit.earned` of this completion shares (all but `credit_id`, `person`,
    `sequence`, `hours_total` and `credits_total`)."""
    audit: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AtOnceResult:
    person_found: bool
    hours_total: Decimal | None
    """The person's new pooled hours; None when the statement wrote nothing and left the
    completion to the steps (a conflict, an enrollment to complete)."""


@dataclass(frozen=True, slots=True)
class Effects:
    credits: Sequence[tuple[int, uuid.UUID]]
    """(sequence, credit id) of each credit earned."""
    events: Sequence[NewEvent]
    audit: dict[str, Any] | None


class CompletionStore(Protocol):
    """Every read and write `CompletionService.record` needs, in one of two shapes."""

    async def provider_context(
        self, tenant_id: str, provider_id: str
    ) -> ProviderContext | None: ...

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """The steps' unit of work on this store (nothing more when the caller holds one)."""
        ...

    async def record_at_once(self, plan: AtOnce) -> AtOnceResult | None:
        """The whole write of a plain new completion as one statement; None if this shape
        has no such statement."""
        ...

    async def claim(
        self, completion: NewCompletion, namespace: str, person_value: str
    ) -> Claim: ...

    async def write(
        self, completion: NewCompletion, person: PersonRef, effects: Effects
    ) -> None: ...

    async def completion_for_course(
        self,
        tenant_id: str,
        program_id: str,
        person_id: uuid.UUID,
        provider_id: str,
        course_id: str,
    ) -> StoredCompletion: ...

    async def idempotency(
        self, tenant_id: str, provider_id: str, key: str, now: datetime
    ) -> StoredCompletion | None: ...

    async def remember_idempotency(self, values: dict[str, Any], now: datetime) -> bool: ...

    async def audit(self, values: dict[str, Any]) -> None: ...

    async def reschedule(self, enrollment: Enrollment) -> None:
        """A completed enrollment's lifecycle rows: the live ones go, the certificate's come."""


class SqlStore(CompletionRepository):
    """The portable shape: one statement per step, through SQLAlchemy Core.

    The repository's reads and the audit insert already are what the store
    needs; this adds the two steps that have a faster shape on PostgreSQL.
    """

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self.credits = CreditRepository(session)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        # The session's transaction, which the caller opened, is the unit of work.
        yield

    async def record_at_once(self, plan: AtOnce) -> AtOnceResult | None:
        return None

    async def claim(self, completion: NewCompletion, namespace: str, person_value: str) -> Claim:
        person = await self.find_person(completion.tenant_id, namespace, person_value)
        if person is None:
            return Claim(person=None, inserted=False, hours_total=None)
        inserted = await self.insert_completion(
            {
                "tenant_id": completion.tenant_id,
                "id": completion.id,
                "program_id": completion.program_id,
                "person_id": person.id,
                "provider_id": completion.provider_id,
                "course_id": completion.course_id,
                "course_name": completion.course_name,
                "content_hours": completion.content_hours,
                "completed_at": completion.completed_at,
                "recorded_at": completion.recorded_at,
                "content_digest": completion.content_digest,
            }
        )
        if not inserted:
            return Claim(person=person, inserted=False, hours_total=None)
        total = await self.credits.add_hours(
            completion.tenant_id,
            completion.program_id,
            person.id,
            completion.content_hours,
            completion.hours_per_credit,
            completion.recorded_at,
        )
        enrollments = EnrollmentRepository(self.session)
        live = await enrollments.live_for_completion(
            completion.tenant_id, person.id, completion.provider_id, completion.course_id
        )
        enrollment = None
        if live is not None:
            validity = await enrollments.certificate_validity(live.tenant_id, live.course_id)
            expires = (
                None if validity is None else completion.recorded_at + timedelta(days=validity)
            )
            enrollment = completed_enrollment(completion, person, live.id, live.course_id, expires)
            await enrollments.update_many([completed_change(enrollment)])
        return Claim(person=person, inserted=True, hours_total=total, enrollment=enrollment)

    async def reschedule(self, enrollment: Enrollment) -> None:
        repo = EnrollmentRepository(self.session)
        await repo.unschedule(enrollment.tenant_id, [enrollment.id], lifecycle.WHILE_LIVE)
        await repo.schedule(lifecycle.on_completed(enrollment))

    async def write(self, completion: NewCompletion, person: PersonRef, effects: Effects) -> None:
        await self.credits.add_credits(
            [
                {
                    "tenant_id": completion.tenant_id,
                    "program_id": completion.program_id,
                    "person_id": person.id,
                    "sequence": sequence,
                    "id": credit_id,
                    "completion_id": completion.id,
                    "awarded_at": completion.recorded_at,
                }
                for sequence, credit_id in effects.credits
            ]
        )
        await record_events(
            self.session, completion.tenant_id, effects.events, completion.recorded_at
        )
        if effects.audit is not None:
            await self.audit(effects.audit)


_PG_CLAIM = """
WITH person AS (
    SELECT m.person_id,
           jsonb_agg(jsonb_build_array(i.namespace, i.value) ORDER BY i.namespace, i.value) AS ids
    FROM person_identifiers m
    JOIN person_identifiers i ON i.tenant_id = m.tenant_id AND i.person_id = m.person_id
    WHERE m.tenant_id = $1::varchar AND m.namespace = $2::varchar AND m.value = $3::varchar
    GROUP BY m.person_id
), inserted AS (
    INSERT INTO completions (tenant_id, id, program_id, person_id, provider_id, course_id,
                             course_name, content_hours, completed_at, recorded_at, content_digest)
    SELECT $1::varchar, $4::uuid, $5::varchar, person.person_id, $6::varchar, $7::varchar,
           $8::varchar, $9::bigint, $10::timestamptz, $11::timestamptz, $12::varchar
    FROM person
    ON CONFLICT DO NOTHING
    RETURNING person_id
), totals AS (
    INSERT INTO credit_totals AS t (tenant_id, program_id, person_id, hours_total, credits_total,
                                    updated_at)
    SELECT $1::varchar, $5::varchar, inserted.person_id, $9::bigint, $9::bigint / $13::bigint,
           $11::timestamptz
    FROM inserted
    ON CONFLICT (tenant_id, program_id, person_id) DO UPDATE
    SET hours_total = t.hours_total + excluded.hours_total,
        credits_total = (t.hours_total + excluded.hours_total) / $13::bigint,
        updated_at = excluded.updated_at
    RETURNING t.hours_total
), enrolled AS (
    UPDATE enrollments AS e
    SET status = 'completed', completed_at = $11::timestamptz, completion_id = $4::uuid,
        updated_at = $11::timestamptz,
        certificate_expires_at = $11::timestamptz
                                 + make_interval(days => c.certificate_validity_days)
    FROM course_external_ids AS x
    JOIN courses AS c ON c.tenant_id = x.tenant_id AND c.id = x.course_id
    WHERE x.tenant_id = $1::varchar AND x.provider_id = $6::varchar
      AND x.external_id = $7::varchar
      AND e.tenant_id = $1::varchar AND e.course_id = x.course_id
      AND e.person_id = (SELECT person_id FROM inserted)
      AND e.status IN ('assigned', 'claimed', 'active')
    RETURNING e.id, e.course_id, e.certificate_expires_at
)
SELECT person.person_id, person.ids,
       EXISTS (SELECT 1 FROM inserted) AS inserted,
       (SELECT hours_total FROM totals) AS hours_total,
       enrolled.id AS enrollment_id, enrolled.course_id AS enrollment_course_id,
       enrolled.certificate_expires_at
FROM (SELECT 1) AS one LEFT JOIN person ON true LEFT JOIN enrolled ON true
"""

_PG_UNSCHEDULE = """
DELETE FROM scheduled_events
WHERE tenant_id = $1::varchar AND enrollment_id = $2::uuid AND kind = ANY($3::varchar[])
"""

_PG_SCHEDULE = """
INSERT INTO scheduled_events (tenant_id, enrollment_id, kind, due_at)
SELECT $1::varchar, $2::uuid, s.kind, s.due_at
FROM unnest($3::varchar[], $4::timestamptz[]) AS s(kind, due_at)
ON CONFLICT (tenant_id, enrollment_id, kind) DO UPDATE SET due_at = excluded.due_at
"""

_PG_WRITE = """
WITH credit_rows AS (
    INSERT INTO credits (tenant_id, program_id, person_id, sequence, id, completion_id, awarded_at)
    SELECT $1::varchar, $2::varchar, $3::uuid, c.sequence, c.id, $4::uuid, $5::timestamptz
    FROM unnest($6::int[], $7::uuid[]) AS c(sequence, id)
), event_rows AS (
    INSERT INTO events (tenant_id, id, type, occurred_at, data)
    SELECT $1::varchar, e.id, e.type, $5::timestamptz, e.data
    FROM unnest($8::uuid[], $9::varchar[], $10::jsonb[]) AS e(id, type, data)
)
INSERT INTO inbound_audit (tenant_id, id, provider_id, key_id, outcome, status, reason,
                           completion_id, parked_id, replay_of, received_at)
SELECT $1::varchar, $11::uuid, $12::varchar, $13::varchar, $14::varchar, $15::int, $16::varchar,
       $4::uuid, NULL, NULL, $17::timestamptz
WHERE $18::boolean
"""

_PG_AT_ONCE = """
WITH person AS (
    SELECT m.person_id,
           jsonb_build_object('id', m.person_id, 'identifiers', jsonb_agg(
               jsonb_build_object('namespace', i.namespace, 'value', i.value)
               ORDER BY i.namespace, i.value)) AS ref
    FROM person_identifiers m
    JOIN person_identifiers i ON i.tenant_id = m.tenant_id AND i.person_id = m.person_id
    WHERE m.tenant_id = $1::varchar AND m.namespace = $2::varchar AND m.value = $3::varchar
    GROUP BY m.person_id
), live AS (
    SELECT 1
    FROM course_external_ids AS x
    JOIN enrollments AS e ON e.tenant_id = x.tenant_id AND e.course_id = x.course_id
    WHERE x.tenant_id = $1::varchar AND x.provider_id = $6::varchar
      AND x.external_id = $7::varchar
      AND e.person_id = (SELECT person_id FROM person)
      AND e.status IN ('assigned', 'claimed', 'active')
    LIMIT 1
), inserted AS (
    INSERT INTO completions (tenant_id, id, program_id, person_id, provider_id, course_id,
                             course_name, content_hours, completed_at, recorded_at, content_digest)
    SELECT $1::varchar, $4::uuid, $5::varchar, person.person_id, $6::varchar, $7::varchar,
           $8::varchar, $9::bigint, $10::timestamptz, $11::timestamptz, $12::varchar
    FROM person
    WHERE NOT EXISTS (SELECT 1 FROM live)
    ON CONFLICT DO NOTHING
    RETURNING person_id
), totals AS (
    INSERT INTO credit_totals AS t (tenant_id, program_id, person_id, hours_total, credits_total,
                                    updated_at)
    SELECT $1::varchar, $5::varchar, inserted.person_id, $9::bigint, $9::bigint / $13::bigint,
           $11::timestamptz
    FROM inserted
    ON CONFLICT (tenant_id, program_id, person_id) DO UPDATE
    SET hours_total = t.hours_total + excluded.hours_total,
        credits_total = (t.hours_total + excluded.hours_total) / $13::bigint,
        updated_at = excluded.updated_at
    RETURNING t.person_id, t.hours_total, t.credits_total
), crossed AS (
    SELECT totals.person_id, s AS sequence,
           s - (totals.hours_total - $9::bigint) / $13::bigint AS n,
           (totals.hours_total / 100)::text || '.'
               || lpad((totals.hours_total % 100)::text, 2, '0') AS hours_text
    FROM totals,
         generate_series((totals.hours_total - $9::bigint) / $13::bigint + 1,
                         totals.credits_total) AS s
), credit_rows AS (
    INSERT INTO credits (tenant_id, program_id, person_id, sequence, id, completion_id, awarded_at)
    SELECT $1::varchar, $5::varchar, crossed.person_id, crossed.sequence,
           ($14::uuid[])[crossed.n], $4::uuid, $11::timestamptz
    FROM crossed
), event_rows AS (
    INSERT INTO events (tenant_id, id, type, occurred_at, data)
    SELECT $1::varchar, ($15::uuid[])[1], 'completion.recorded', $11::timestamptz,
           $16::jsonb || jsonb_build_object('person', person.ref)
    FROM inserted, person
    UNION ALL
    SELECT $1::varchar, ($15::uuid[])[crossed.n + 1], 'credit.earned', $11::timestamptz,
           $17::jsonb || jsonb_build_object(
               'credit_id', ($14::uuid[])[crossed.n], 'person', person.ref,
               'sequence', crossed.sequence, 'hours_total', crossed.hours_text,
               'credits_total', crossed.sequence)
    FROM crossed, person
), audit_row AS (
    INSERT INTO inbound_audit (tenant_id, id, provider_id, key_id, outcome, status, reason,
                               completion_id, parked_id, replay_of, received_at)
    SELECT $1::varchar, $18::uuid, $19::varchar, $20::varchar, $21::varchar, $22::int,
           $23::varchar, $4::uuid, NULL, NULL, $24::timestamptz
    FROM inserted
)
SELECT person.person_id IS NOT NULL AS person_found, totals.hours_total
FROM (SELECT 1) AS one LEFT JOIN person ON true LEFT JOIN totals ON true
"""
"""`record_at_once`: the steps' statements folded into one, writing nothing unless the
completion is new and completes no enrollment (`live` finds what `enrolled` in `_PG_CLAIM`
would complete; the two must match). The data of `completion.recorded` and `credit.earned`
come in as JSON; the statement adds the parts only it knows."""

_PG_CONTEXT = """
SELECT p.scheme, g.id AS program_id, g.jurisdiction, g.hours_per_credit, g.identifier_namespace,
       k.key_id, k.secret_ref, k.secret_encrypted
FROM providers p
JOIN programs g ON g.tenant_id = p.tenant_id AND g.id = p.program_id
LEFT JOIN provider_keys k
       ON k.tenant_id = p.tenant_id AND k.provider_id = p.id AND k.retired_at IS NULL
WHERE p.tenant_id = $1::varchar AND p.id = $2::varchar
"""

_PG_FOR_COURSE = """
SELECT id, content_digest FROM completions
WHERE tenant_id = $1::varchar AND program_id = $2::varchar AND person_id = $3::uuid
  AND provider_id = $4::varchar AND course_id = $5::varchar
"""

_PG_IDEMPOTENCY = """
SELECT completion_id, content_digest FROM idempotency_keys
WHERE tenant_id = $1::varchar AND provider_id = $2::varchar AND key = $3::varchar
  AND expires_at > $4::timestamptz
"""

_PG_REMEMBER = """
INSERT INTO idempotency_keys AS k (tenant_id, provider_id, key, content_digest, completion_id,
                                   expires_at)
VALUES ($1::varchar, $2::varchar, $3::varchar, $4::varchar, $5::uuid, $6::timestamptz)
ON CONFLICT (tenant_id, provider_id, key) DO UPDATE
SET content_digest = excluded.content_digest, completion_id = excluded.completion_id,
    expires_at = excluded.expires_at
WHERE k.expires_at <= $7::timestamptz
RETURNING key
"""

_PG_AUDIT = """
INSERT INTO inbound_audit (tenant_id, id, provider_id, key_id, outcome, status, reason,
                           completion_id, parked_id, replay_of, received_at)
VALUES ($1::varchar, $2::uuid, $3::varchar, $4::varchar, $5::varchar, $6::int, $7::varchar,
        $8::uuid, $9::uuid, $10::uuid, $11::timestamptz)
"""


class PostgresStore:
    """The hot shape: prepared statements on the raw asyncpg connection, no ORM session.

    `driver` gives the asyncpg connection the work runs on: the gateway's own
    (see `postgres_connection`), or a session's (parking replays), whose
    transaction is already open.
    """

    def __init__(self, driver: Callable[[], Awaitable[Any]]) -> None:
        self._driver = driver

    @classmethod
    def of_session(cls, session: AsyncSession) -> PostgresStore:
        return cls(lambda: driver_connection(session))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with (await self._driver()).transaction():
            yield

    async def record_at_once(self, plan: AtOnce) -> AtOnceResult | None:
        completion, audit = plan.completion, plan.audit
        row = await (await self._driver()).fetchrow(
            _PG_AT_ONCE,
            completion.tenant_id,
            plan.namespace,
            plan.person_value,
            completion.id,
            completion.program_id,
            completion.provider_id,
            completion.course_id,
            completion.course_name,
            to_hundredths(completion.content_hours),
            completion.completed_at,
            completion.recorded_at,
            completion.content_digest,
            to_hundredths(completion.hours_per_credit),
            plan.credit_ids,
            plan.event_ids,
            json.dumps(plan.recorded),
            json.dumps(plan.earned),
            audit["id"],
            audit["provider_id"],
            audit["key_id"],
            audit["outcome"],
            audit["status"],
            audit["reason"],
            audit["received_at"],
        )
        total = row["hours_total"]
        return AtOnceResult(
            person_found=row["person_found"],
            hours_total=None if total is None else from_hundredths(total),
        )

    async def provider_context(self, tenant_id: str, provider_id: str) -> ProviderContext | None:
        rows = await (await self._driver()).fetch(_PG_CONTEXT, tenant_id, provider_id)
        if not rows:
            return None
        first = rows[0]
        return ProviderContext(
            tenant_id=tenant_id,
            provider_id=provider_id,
            scheme=first["scheme"],
            program_id=first["program_id"],
            jurisdiction=first["jurisdiction"],
            hours_per_credit=from_hundredths(first["hours_per_credit"]),
            namespace=first["identifier_namespace"],
            keys=tuple(
                KeySecret(r["key_id"], r["secret_ref"], r["secret_encrypted"])
                for r in rows
                if r["key_id"] is not None
            ),
        )

    async def completion_for_course(
        self,
        tenant_id: str,
        program_id: str,
        person_id: uuid.UUID,
        provider_id: str,
        course_id: str,
    ) -> StoredCompletion:
        row = await (await self._driver()).fetchrow(
            _PG_FOR_COURSE, tenant_id, program_id, person_id, provider_id, course_id
        )
        return StoredCompletion(id=row["id"], content_digest=row["content_digest"])

    async def idempotency(
        self, tenant_id: str, provider_id: str, key: str, now: datetime
    ) -> StoredCompletion | None:
        row = await (await self._driver()).fetchrow(
            _PG_IDEMPOTENCY, tenant_id, provider_id, key, now
        )
        if row is None:
            return None
        return StoredCompletion(id=row["completion_id"], content_digest=row["content_digest"])

    async def remember_idempotency(self, values: dict[str, Any], now: datetime) -> bool:
        row = await (await self._driver()).fetchrow(
            _PG_REMEMBER,
            values["tenant_id"],
            values["provider_id"],
            values["key"],
            values["content_digest"],
            values["completion_id"],
            values["expires_at"],
            now,
        )
        return row is not None

    async def audit(self, values: dict[str, Any]) -> None:
        await (await self._driver()).execute(
            _PG_AUDIT,
            values["tenant_id"],
            values["id"],
            values["provider_id"],
            values["key_id"],
            values["outcome"],
            values["status"],
            values["reason"],
            values["completion_id"],
            values["parked_id"],
            values["replay_of"],
            values["received_at"],
        )

    async def claim(self, completion: NewCompletion, namespace: str, person_value: str) -> Claim:
        driver = await self._driver()
        row = await driver.fetchrow(
            _PG_CLAIM,
            completion.tenant_id,
            namespace,
            person_value,
            completion.id,
            completion.program_id,
            completion.provider_id,
            completion.course_id,
            completion.course_name,
            to_hundredths(completion.content_hours),
            completion.completed_at,
            completion.recorded_at,
            completion.content_digest,
            to_hundredths(completion.hours_per_credit),
        )
        if row["person_id"] is None:
            return Claim(person=None, inserted=False, hours_total=None)
        ids = row["ids"]
        if isinstance(ids, str):  # without SQLAlchemy's jsonb codec the driver returns text
            ids = json.loads(ids)
        person = PersonRef(id=row["person_id"], identifiers=tuple((ns, v) for ns, v in ids))
        total = row["hours_total"]
        enrollment = None
        if row["enrollment_id"] is not None:
            enrollment = completed_enrollment(
                completion,
                person,
                row["enrollment_id"],
                row["enrollment_course_id"],
                row["certificate_expires_at"],
            )
        return Claim(
            person=person,
            inserted=row["inserted"],
            hours_total=None if total is None else from_hundredths(total),
            enrollment=enrollment,
        )

    async def reschedule(self, enrollment: Enrollment) -> None:
        driver = await self._driver()
        await driver.execute(
            _PG_UNSCHEDULE, enrollment.tenant_id, enrollment.id, list(lifecycle.WHILE_LIVE)
        )
        rows = lifecycle.on_completed(enrollment)
        if rows:
            await driver.execute(
                _PG_SCHEDULE,
                enrollment.tenant_id,
                enrollment.id,
                [r["kind"] for r in rows],
                [r["due_at"] for r in rows],
            )

    async def write(self, completion: NewCompletion, person: PersonRef, effects: Effects) -> None:
        driver = await self._driver()
        audit = effects.audit or {}
        await driver.execute(
            _PG_WRITE,
            completion.tenant_id,
            completion.program_id,
            person.id,
            completion.id,
            completion.recorded_at,
            [sequence for sequence, _ in effects.credits],
            [credit_id for _, credit_id in effects.credits],
            [uuid7() for _ in effects.events],
            [e.type for e in effects.events],
            [json.dumps(e.data) for e in effects.events],
            audit.get("id"),
            audit.get("provider_id"),
            audit.get("key_id"),
            audit.get("outcome"),
            audit.get("status"),
            audit.get("reason"),
            audit.get("received_at"),
            effects.audit is not None,
        )


def completed_enrollment(
    completion: NewCompletion,
    person: PersonRef,
    enrollment_id: uuid.UUID,
    course_id: str,
    certificate_expires_at: datetime | None,
) -> Enrollment:
    """The enrollment as the completion left it: what its event and lifecycle rows need."""
    return Enrollment(
        tenant_id=completion.tenant_id,
        id=enrollment_id,
        course_id=course_id,
        person_id=person.id,
        status="completed",
        reason=None,
        completed_at=completion.recorded_at,
        completion_id=completion.id,
        certificate_expires_at=certificate_expires_at,
        updated_at=completion.recorded_at,
    )


def completed_change(enrollment: Enrollment) -> dict[str, Any]:
    return {
        "k_tenant": enrollment.tenant_id,
        "k_id": enrollment.id,
        "status": enrollment.status,
        "completed_at": enrollment.completed_at,
        "completion_id": enrollment.completion_id,
        "certificate_expires_at": enrollment.certificate_expires_at,
        "updated_at": enrollment.updated_at,
    }


def store_for(session: AsyncSession) -> CompletionStore:
    """The store for work inside a session's transaction (replays, the SQLite hot path)."""
    if dialect_of(session) == "postgresql":
        return PostgresStore.of_session(session)
    return SqlStore(session)


@asynccontextmanager
async def postgres_connection(engine: AsyncEngine) -> AsyncIterator[PostgresStore]:
    """A pooled connection's driver, with no ORM session and no transaction open.

    Each statement commits by itself until `transaction()` opens one, which
    commits when its block ends and rolls back on any exception. SQLAlchemy's
    pool still owns the connection (and resets it when returned), so the hot
    path shares the process's one pool.
    """
    async with engine.connect() as connection:
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None

        async def current() -> Any:
            return driver

        yield PostgresStore(current)
