"""Recording a verified completion: once, exactly, with its credits and events.

The service never commits; the caller's transaction holds the completion,
the new totals, the credit rows and the events together.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from coursegate.completions.errors import AlreadyCompleted, IdempotencyKeyReused, PersonNotFound
from coursegate.completions.payload import CompletionReport
from coursegate.completions.repository import PersonRef, ProviderContext
from coursegate.completions.store import CompletionStore, Effects, NewCompletion
from coursegate.credits.ledger import crossing
from coursegate.enrollments.events import enrollment_event
from coursegate.events.outbox import NewEvent
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


AuditFor = Callable[[Outcome], dict[str, Any]]
"""Builds the audit row of an outcome, so it is written with the outcome's own statements."""


class CompletionService:
    def __init__(self, store: CompletionStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def record(
        self,
        ctx: ProviderContext,
        report: CompletionReport,
        idempotency_key: str | None,
        audit: AuditFor | None = None,
    ) -> Outcome:
        now = self.clock.now()
        digest = report.digest()
        if idempotency_key is not None:
            prior = await self.store.idempotency(
                ctx.tenant_id, ctx.provider_id, idempotency_key, now
            )
            if prior is not None:
                if prior.content_digest != digest:
                    raise IdempotencyKeyReused()
                return await self._audited(Duplicate(prior.id), audit)

        completion = NewCompletion(
            tenant_id=ctx.tenant_id,
            id=uuid7(),
            program_id=ctx.program_id,
            provider_id=ctx.provider_id,
            course_id=report.course_id,
            course_name=report.course_name,
            content_hours=report.content_hours,
            completed_at=report.completed_at,
            recorded_at=now,
            content_digest=digest,
            hours_per_credit=ctx.hours_per_credit,
        )
        claim = await self.store.claim(completion, ctx.namespace, report.person_id)
        if claim.person is None:
            raise PersonNotFound("no person with this id in the program's namespace yet")
        if not claim.inserted or claim.hours_total is None:
            existing = await self.store.completion_for_course(
                ctx.tenant_id, ctx.program_id, claim.person.id, ctx.provider_id, report.course_id
            )
            if existing.content_digest != digest:
                raise AlreadyCompleted("this course is already recorded for this person")
            await self._remember(ctx, idempotency_key, digest, existing.id)
            return await self._audited(Duplicate(existing.id), audit)

        crossed = crossing(claim.hours_total, report.content_hours, ctx.hours_per_credit)
        credits = [(sequence, uuid7()) for sequence in crossed.sequences]
        outcome = Accepted(
            completion_id=completion.id,
            hours_total=claim.hours_total,
            credits_awarded=len(credits),
            credits_total=crossed.credits_total,
        )
        person = claim.person
        events = [
            _completion_recorded(ctx, person, completion.id, report),
            *(
                _credit_earned(ctx, person, credit_id, sequence, claim.hours_total, completion.id)
                for sequence, credit_id in credits
            ),
        ]
        if claim.enrollment is not None:
            events.append(enrollment_event(claim.enrollment, person))
        await self._remember(ctx, idempotency_key, digest, completion.id)
        await self.store.write(
            completion,
            person,
            Effects(credits=credits, events=events, audit=audit(outcome) if audit else None),
        )
        if claim.enrollment is not None:
            await self.store.reschedule(claim.enrollment)
        return outcome

    async def _audited(self, outcome: Outcome, audit: AuditFor | None) -> Outcome:
        if audit is not None:
            await self.store.audit(audit(outcome))
        return outcome

    async def _remember(
        self, ctx: ProviderContext, key: str | None, digest: str, completion_id: uuid.UUID
    ) -> None:
        if key is None:
            return
        now = self.clock.now()
        kept = await self.store.remember_idempotency(
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
