"""Parked reports: completions whose person was unknown, replayed once the person exists.

A replay runs inside a savepoint of the caller's transaction: when a new
person's identifier wakes a parked report, the person and the completion
appear together, and a replay that is refused (say, the course was recorded
meanwhile) is audited without undoing the person.

A report is credited at most once however often it is replayed: the
completion is unique per person and provider course, so a second replay of
the same report can only find it recorded (`duplicate`). Replaying one parked
report by its id goes further: it is locked while it is replayed, and one
already resolved is not replayed again but answered with its outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.completions.errors import PersonNotFound
from coursegate.completions.inbound import (
    InboundAttempt,
    audit_row,
    outcome_response,
    refusal_reason,
)
from coursegate.completions.payload import parse_report
from coursegate.completions.repository import CompletionReads, CompletionRepository
from coursegate.completions.service import CompletionService
from coursegate.completions.store import store_for
from coursegate.kit.clock import Clock
from coursegate.kit.errors import DomainError, NotFound
from coursegate.kit.pagination import DEFAULT_LIMIT
from coursegate.models import ParkedRequest


@dataclass(frozen=True, slots=True)
class ReplayResult:
    parked: ParkedRequest
    outcome: str
    """`accepted`, `duplicate`, `still_parked`, or the refusal's code (`provider_gone`
    when the provider was deleted)."""
    replayed: bool = True
    """False when the report was resolved already and this call only reports how."""


class ParkingService:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.session = session
        self.repo = CompletionRepository(session)
        self.clock = clock

    async def replay_for(
        self, tenant_id: str, identifiers: Sequence[tuple[str, str]]
    ) -> list[ReplayResult]:
        """Replay what waits for these `(namespace, value)` identifiers."""
        return [await self._replay(p) for p in await self.repo.waiting(tenant_id, identifiers)]

    async def replay_all(self, tenant_id: str) -> list[ReplayResult]:
        """Replay every unresolved parked report of a tenant (the manual command)."""
        return [await self._replay(p) for p in await self.repo.waiting(tenant_id, None)]

    async def parked(
        self,
        tenant_id: str,
        *,
        open_only: bool = False,
        before: uuid.UUID | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Sequence[ParkedRequest]:
        """A tenant's parked reports, newest first, `limit` at most after the one with id
        `before`; only those still waiting when `open_only`."""
        return await CompletionReads(self.session).parked(
            tenant_id, open_only=open_only, before=before, limit=limit
        )

    async def replay_one(self, tenant_id: str, parked_id: uuid.UUID) -> ReplayResult:
        """Replay one parked report now, as `replay_all` would (NotFound if the tenant
        has no such report). One resolved already is answered with its outcome and
        `replayed` false, so calling this twice credits the learner once."""
        parked = await self.repo.parked_for_update(tenant_id, parked_id)
        if parked is None:
            raise NotFound()
        if parked.resolved_at is not None:
            assert parked.outcome is not None
            return ReplayResult(parked=parked, outcome=parked.outcome, replayed=False)
        return await self._replay(parked)

    async def _replay(self, parked: ParkedRequest) -> ReplayResult:
        now = self.clock.now()
        attempt = InboundAttempt(
            parked.tenant_id, parked.provider_id, received_at=now, key_id=parked.key_id
        )
        parked.attempts += 1
        ctx = await self.repo.provider_context(parked.tenant_id, parked.provider_id)
        outcome: str
        status: int
        completion_id = None
        if ctx is None:
            outcome, status, attempt.reason = "provider_gone", 410, "the provider was deleted"
        else:
            try:
                async with self.session.begin_nested():
                    # Verified when it arrived; the body is checked again against today's program.
                    report = parse_report(parked.body, jurisdiction=ctx.jurisdiction, now=None)
                    result = await CompletionService(store_for(self.session), self.clock).record(
                        ctx, report, parked.idempotency_key
                    )
                response = outcome_response(result)
                outcome, status, completion_id = (
                    response.body["status"],
                    response.status,
                    result.completion_id,
                )
            except PersonNotFound:
                outcome, status, attempt.reason = "still_parked", 422, "PERSON_NOT_FOUND"
            except DomainError as error:
                outcome, status, attempt.reason = error.code, error.status, refusal_reason(error)
        if outcome != "still_parked":
            parked.resolved_at = now
            parked.outcome = outcome
        await self.repo.audit(
            audit_row(
                attempt,
                f"replay_{outcome.lower()}",
                status,
                completion_id=completion_id,
                replay_of=parked.id,
            )
        )
        await self.session.flush()
        return ReplayResult(parked=parked, outcome=outcome)
