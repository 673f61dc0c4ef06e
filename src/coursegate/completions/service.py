"""Recording a verified completion: once, exactly, with its credits and events.

The service never commits; the caller's transaction holds the completion,
the new totals, the credit rows and the events together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.completions.errors import AlreadyCompleted, IdempotencyKeyReused, PersonNotFound
from coursegate.completions.payload import CompletionReport
from coursegate.completions.repository import CompletionRepository, PersonRef, ProviderContext
from coursegate.credits.ledger import crossing
from coursegate.credits.repository import CreditRepository
from coursegate.events.outbox import NewEvent, record_events
from coursegate.kit.clock import Clock
from coursegate.kit.fields import format_hours
from coursegate.kit.ids import uuid7
from coursegate.kit.timefmt import format_instant

IDEMPOTENCY_TTL = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Accepted:
    completion_id: uuid.UUID
    hours_total: Decimal
    credits_awarded: int
    credits_total: int


@dataclass(frozen=True, slots=True)
class Duplicate:
    completion_id: uuid.UUID


Outcome = Accepted | Duplicate


class CompletionService:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.repo = CompletionRepository(session)
        self.credits = CreditRepository(session)
        self.session = session
        self.clock = clock

    async def record(
        self, ctx: ProviderContext, report: CompletionReport, idempotency_key: str | None
    ) -> Outcome:
        now = self.clock.now()
        person = await self.repo.find_person(ctx.tenant_id, ctx.namespace, report.person_id)
        if person is None:
            raise PersonNotFound("no person with this id in the program's namespace yet")
        digest = report.digest()
        if idempotency_key is not None:
            prior = await self.repo.idempotency(
                ctx.tenant_id, ctx.provider_id, idempotency_key, now
            )
            if prior is not None:
                if prior.content_digest != digest:
                    raise IdempotencyKeyReused()
                return Duplicate(prior.id)

        completion_id = uuid7()
        inserted = await self.repo.insert_completion(
            {
                "tenant_id": ctx.tenant_id,
                "id": completion_id,
                "program_id": ctx.program_id,
                "person_id": person.id,
                "provider_id": ctx.provider_id,
                "course_id": report.course_id,
                "course_name": report.course_name,
                "content_hours": report.content_hours,
                "completed_at": report.completed_at,
                "recorded_at": now,
                "content_digest": digest,
            }
        )
        if not inserted:
            existing = await self.repo.completion_for_course(
                ctx.tenant_id, ctx.program_id, person.id, ctx.provider_id, report.course_id
            )
            if existing.content_digest != digest:
                raise AlreadyCompleted("this course is already recorded for this person")
            await self._remember(ctx, idempotency_key, digest, existing.id)
            return Duplicate(existing.id)

        total = await self.credits.add_hours(
            ctx.tenant_id,
            ctx.program_id,
            person.id,
            report.content_hours,
            ctx.hours_per_credit,
            now,
        )
        crossed = crossing(total, report.content_hours, ctx.hours_per_credit)
        credit_ids = {sequence: uuid7() for sequence in crossed.sequences}
        await self.credits.add_credits(
            [
                {
                    "tenant_id": ctx.tenant_id,
                    "program_id": ctx.program_id,
                    "person_id": person.id,
                    "sequence": sequence,
                    "id": credit_id,
                    "completion_id": completion_id,
                    "awarded_at": now,
                }
                for sequence, credit_id in credit_ids.items()
            ]
        )
        await record_events(
            self.session,
            ctx.tenant_id,
            [
                _completion_recorded(ctx, person, completion_id, report),
                *(
                    _credit_earned(ctx, person, credit_id, sequence, total, completion_id)
                    for sequence, credit_id in credit_ids.items()
                ),
            ],
            now,
        )
        await self._remember(ctx, idempotency_key, digest, completion_id)
        return Accepted(
            completion_id=completion_id,
            hours_total=total,
            credits_awarded=len(credit_ids),
            credits_total=crossed.credits_total,
        )

    async def _remember(
        self, ctx: ProviderContext, key: str | None, digest: str, completion_id: uuid.UUID
    ) -> None:
        if key is None:
            return
        now = self.clock.now()
        kept = await self.repo.remember_idempotency(
            {
                "tenant_id": ctx.tenant_id,
                "provider_id": ctx.provider_id,
                "key": key,
                "content_digest": digest,
                "completion_id": completion_id,
                "expires_at": now + IDEMPOTENCY_TTL,
            },
            now,
        )
        if not kept:
            # A concurrent request took this key for other content first.
            raise IdempotencyKeyReused()


def _completion_recorded(
    ctx: ProviderContext, person: PersonRef, completion_id: uuid.UUID, report: CompletionReport
) -> NewEvent:
    return NewEvent(
        "completion.recorded",
        {
            "completion_id": str(completion_id),
            "program_id": ctx.program_id,
            "provider_id": ctx.provider_id,
            "person": person.as_event(),
            "course_id": report.course_id,
            "course_name": report.course_name,
            "content_hours": format_hours(report.content_hours),
            "completed_at": format_instant(report.completed_at),
        },
    )


def _credit_earned(
    ctx: ProviderContext,
    person: PersonRef,
    credit_id: uuid.UUID,
    sequence: int,
    hours_total: Decimal,
    completion_id: uuid.UUID,
) -> NewEvent:
    return NewEvent(
        "credit.earned",
        {
            "credit_id": str(credit_id),
            "program_id": ctx.program_id,
            "person": person.as_event(),
            "sequence": sequence,
            "hours_total": format_hours(hours_total),
            "credits_total": sequence,
            "completion_id": str(completion_id),
        },
    )
