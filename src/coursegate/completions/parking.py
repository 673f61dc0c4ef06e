"""Parked reports: completions whose person was unknown, replayed once the person exists.

A replay runs inside a savepoint of the caller's transaction: when a new
person's identifier wakes a parked report, the person and the completion
appear together, and a replay that is refused (say, the course was recorded
meanwhile) is audited without undoing the person.
"""

from __future__ import annotations

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
from coursegate.completions.repository import CompletionRepository
from coursegate.completions.service import CompletionService
from coursegate.completions.store import store_for
from coursegate.kit.clock import Clock
from coursegate.kit.errors import DomainError
from coursegate.models import ParkedRequest


@dataclass(frozen=True, slots=True)
class ReplayResult:
    parked: ParkedRequest
    outcome: str
    """`accepted`, `duplicate`, `still_parked`, or the refusal's code."""


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
