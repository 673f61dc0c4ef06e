"""Recording a verified completion: once, exactly, with its credits and events.

The service never commits; the caller's transaction holds the completion,
the new totals, the credit rows and the events together.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from coursegate.completions.errors import AlreadyCompleted, IdempotencyKeyReused, PersonNotFound
from coursegate.completions.payload import CompletionReport
from coursegate.completions.repository import ProviderContext
from coursegate.completions.store import AtOnce, CompletionStore, Effects, NewCompletion
from coursegate.credits.ledger import Crossing, credits_for, crossing
from coursegate.enrollments.events import enrollment_event
from coursegate.events.outbox import NewEvent
from coursegate.kit.clock import Clock
from coursegate.kit.fields import format_hours
from coursegate.kit.ids import uuid7
from coursegate.kit.timefmt import format_instant

IDEMPOTENCY_TTL = timedelta(days=30)

AT_ONCE_MOST_CREDITS = 16
"""A completion that could cross more thresholds than this takes the steps: the single
statement is sent an id for every credit it might award."""


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


OutcomeKind = Literal["accepted", "duplicate"]

AuditFor = Callable[[OutcomeKind, uuid.UUID], dict[str, Any]]
"""Builds the audit row of an outcome (its kind and completion), so it is written with the
outcome's own statements."""


class CompletionService:
    def __init__(self, store: CompletionStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def record_at_once(
        self, ctx: ProviderContext, report: CompletionReport, audit: AuditFor
    ) -> Outcome | None:
        """A new completion, its totals, credits, events and audit row in one statement.

        For a request without an idempotency key, which is most of them. None
        when the store has no such statement or the completion needs more than
        a plain insert (it conflicts with a recorded one, or completes an
        enrollment): then `record` runs the steps, in a transaction, from the
        start. Nothing was written in that case.
        """
        most = credits_for(report.content_hours, ctx.hours_per_credit) + 1
        if most > AT_ONCE_MOST_CREDITS:
            return None
        completion = _new_completion(ctx, report, report.digest(), self.clock.now())
        result = await self.store.record_at_once(
            AtOnce(
                completion=completion,
                namespace=ctx.namespace,
                person_value=report.person_id,
                credit_ids=[uuid7() for _ in range(most)],
                event_ids=[uuid7() for _ in range(most + 1)],
                recorded=_completion_recorded(ctx, completion.id, report),
                earned=_credit_earned_common(ctx, completion.id),
                audit=audit("accepted", completion.id),
            )
        )
        if result is None:
            return None
        if not result.person_found:
            raise PersonNotFound("no person with this id in the program's namespace yet")
        if result.hours_total is None:
            return None
        return _accepted(
            completion.id, crossing(result.hours_total, report.content_hours, ctx.hours_per_credit)
        )

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

        completion = _new_completion(ctx, report, digest, now)
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
        person = claim.person.as_event()
        events = [
            NewEvent(
                "completion.recorded",
                {**_completion_recorded(ctx, completion.id, report), "person": person},
            ),
            *(
                _credit_earned(ctx, completion.id, credit_id, person, sequence, crossed)
                for sequence, credit_id in credits
            ),
        ]
        if claim.enrollment is not None:
            events.append(enrollment_event(claim.enrollment, claim.person))
        await self._remember(ctx, idempotency_key, digest, completion.id)
        await self.store.write(
            completion,
            claim.person,
            Effects(
                credits=credits,
                events=events,
                audit=audit("accepted", completion.id) if audit else None,
            ),
        )
        if claim.enrollment is not None:
            await self.store.reschedule(claim.enrollment)
        return _accepted(completion.id, crossed)

    async def _audited(self, outcome: Duplicate, audit: AuditFor | None) -> Outcome:
        if audit is not None:
            await self.store.audit(audit("duplicate", outcome.completion_id))
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


def _new_completion(
    ctx: ProviderContext, report: CompletionReport, digest: str, now: datetime
) -> NewCompletion:
    return NewCompletion(
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


def _accepted(completion_id: uuid.UUID, crossed: Crossing) -> Accepted:
    return Accepted(
        completion_id=completion_id,
        hours_total=crossed.hours_total,
        credits_awarded=len(crossed.sequences),
        credits_total=crossed.credits_total,
    )


def _completion_recorded(
    ctx: ProviderContext, completion_id: uuid.UUID, report: CompletionReport
) -> dict[str, Any]:
    """`completion.recorded`'s data but the person, which the store adds (SPEC §5)."""
    return {
        "completion_id": str(completion_id),
        "program_id": ctx.program_id,
        "provider_id": ctx.provider_id,
        "course_id": report.course_id,
        "course_name": report.course_name,
        "content_hours": format_hours(report.content_hours),
        "completed_at": format_instant(report.completed_at),
    }


def _credit_earned_common(ctx: ProviderContext, completion_id: uuid.UUID) -> dict[str, Any]:
    """What every `credit.earned` of one completion shares (SPEC §5); each credit adds
    `credit_id`, `person`, `sequence`, `hours_total` and `credits_total`."""
    return {"program_id": ctx.program_id, "completion_id": str(completion_id)}


def _credit_earned(
    ctx: ProviderContext,
    completion_id: uuid.UUID,
    credit_id: uuid.UUID,
    person: dict[str, Any],
    sequence: int,
    crossed: Crossing,
) -> NewEvent:
    return NewEvent(
        "credit.earned",
        {
            **_credit_earned_common(ctx, completion_id),
            "credit_id": str(credit_id),
            "person": person,
            "sequence": sequence,
            "hours_total": format_hours(crossed.hours_total),
            "credits_total": sequence,
        },
    )
