"""One inbound completion request, in SPEC §2's order of checks, always leaving an audit row.

Size (413) is enforced by the middleware before this runs; then signature
(401) → JSON (400) → fields (400) → the domain outcome. The audit row of an
accepted or duplicate request commits with the completion itself (on
PostgreSQL a plain new completion is one statement, committing by itself);
a refused request's audit row, and a parked request, are written in their
own short transaction after the main one was rolled back. Either way, every
request leaves its row.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from coursegate.completions.errors import PersonNotFound
from coursegate.completions.payload import CompletionReport, parse_report
from coursegate.completions.repository import (
    CompletionRepository,
    ProviderContext,
    identifier_digest,
)
from coursegate.completions.service import Accepted, CompletionService, Outcome, OutcomeKind
from coursegate.completions.store import CompletionStore, SqlStore, postgres_connection
from coursegate.completions.verify import KeySecrets, Verified, claimed_key_id, verify_request
from coursegate.db import Database
from coursegate.kit.clock import Clock
from coursegate.kit.errors import DomainError, Unauthorized, ValidationFailed
from coursegate.kit.fields import format_hours
from coursegate.kit.ids import is_slug, uuid7
from coursegate.kit.outage import is_database_unreachable
from coursegate.kit.signing import SignatureError
from coursegate.models import ParkedRequest

log = structlog.get_logger(__name__)


def signed_path(scope: Mapping[str, Any]) -> str:
    """The path (and query) exactly as the partner sent and signed it: not decoded."""
    path: str = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    if scope.get("query_string"):
        path += "?" + scope["query_string"].decode("latin-1")
    return path


@dataclass(frozen=True, slots=True)
class InboundResponse:
    status: int
    body: dict[str, Any]


@dataclass
class InboundAttempt:
    """What is known about the request so far, for the audit row whatever happens."""

    tenant_id: str
    provider_id: str
    received_at: datetime
    key_id: str | None = None
    ctx: ProviderContext | None = None
    report: CompletionReport | None = None
    idempotency_key: str | None = None
    reason: str | None = field(default=None)


def idempotency_header(headers: Mapping[str, str]) -> str | None:
    raw = headers.get("idempotency-key")
    if raw is None:
        return None
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError:
        raise ValidationFailed.field("Idempotency-Key", "invalid", "must be a UUID") from None


OUTCOME_STATUS: dict[OutcomeKind, int] = {"accepted": 201, "duplicate": 200}


def outcome_response(outcome: Outcome) -> InboundResponse:
    if isinstance(outcome, Accepted):
        return InboundResponse(
            OUTCOME_STATUS["accepted"],
            {
                "status": "accepted",
                "completion_id": str(outcome.completion_id),
                "hours_total": format_hours(outcome.hours_total),
                "credits_awarded": outcome.credits_awarded,
                "credits_total": outcome.credits_total,
            },
        )
    return InboundResponse(
        OUTCOME_STATUS["duplicate"],
        {"status": "duplicate", "completion_id": str(outcome.completion_id)},
    )


def audit_row(
    request: InboundAttempt,
    outcome: str,
    status: int,
    *,
    completion_id: uuid.UUID | None = None,
    parked_id: uuid.UUID | None = None,
    replay_of: uuid.UUID | None = None,
) -> dict[str, Any]:
    return {
        "tenant_id": request.tenant_id,
        "id": uuid7(),
        "provider_id": request.provider_id[:63],
        "key_id": request.key_id,
        "outcome": outcome,
        "status": status,
        "reason": (request.reason or "")[:512] or None,
        "completion_id": completion_id,
        "parked_id": parked_id,
        "replay_of": replay_of,
        "received_at": request.received_at,
    }


def refusal_reason(error: DomainError) -> str:
    """A short reason for the audit: codes and field names, never submitted values."""
    if error.details:
        fields = ", ".join(f"{d['field']}:{d['constraint']}" for d in error.details)
        return f"{error.code} {fields}"
    return error.code


class InboundGateway:
    def __init__(self, database: Database, clock: Clock, secrets: KeySecrets) -> None:
        self.database = database
        self.clock = clock
        self.secrets = secrets

    async def handle(
        self,
        tenant_id: str,
        provider_id: str,
        *,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> InboundResponse:
        request = InboundAttempt(tenant_id, provider_id, received_at=self.clock.now())
        try:
            async with self._connection() as store:
                outcome = await self._process(store, request, method, path, headers, body)
            return outcome_response(outcome)
        except DomainError as error:
            return await self._refused(request, error, body)
        except Exception as error:
            if is_database_unreachable(error):
                raise  # a 503 for the partner to retry; nothing can be audited meanwhile
            # Not a refusal but a failure (a bug): audit it, then let it surface as 500.
            request.reason = f"error {type(error).__name__}"
            await self._audit_alone(request, "error", 500)
            raise

    def _connection(self) -> AbstractAsyncContextManager[CompletionStore]:
        """The hot path's store: the raw driver on PostgreSQL (no transaction until the
        steps need one), a session's transaction on SQLite."""
        if self.database.is_sqlite:
            return _session_store(self.database)
        return postgres_connection(self.database.engine)

    async def _process(
        self,
        store: CompletionStore,
        request: InboundAttempt,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Outcome:
        request.key_id = claimed_key_id(headers)
        ctx = None
        if is_slug(request.tenant_id) and is_slug(request.provider_id):
            ctx = await store.provider_context(request.tenant_id, request.provider_id)
        if ctx is None:
            request.reason = "unknown_provider"
            raise Unauthorized()
        request.ctx = ctx
        try:
            verified: Verified = verify_request(
                ctx,
                self.secrets,
                method=method,
                path=path,
                headers=headers,
                body=body,
                now=request.received_at,
            )
        except SignatureError as error:
            request.reason = error.reason
            raise Unauthorized() from None
        request.key_id = verified.key_id
        report = parse_report(body, jurisdiction=ctx.jurisdiction, now=request.received_at)
        request.report = report
        request.idempotency_key = verified.webhook_id or idempotency_header(headers)

        def audit(outcome: OutcomeKind, completion_id: uuid.UUID) -> dict[str, Any]:
            return audit_row(request, outcome, OUTCOME_STATUS[outcome], completion_id=completion_id)

        service = CompletionService(store, self.clock)
        if request.idempotency_key is None:
            at_once = await service.record_at_once(ctx, report, audit)
            if at_once is not None:
                return at_once
        async with store.transaction():
            return await service.record(ctx, report, request.idempotency_key, audit)

    async def _refused(
        self, request: InboundAttempt, error: DomainError, body: bytes
    ) -> InboundResponse:
        response = InboundResponse(error.status, error.body())
        if request.reason is None:
            request.reason = refusal_reason(error)
        async with self.database.transaction() as session:
            repo = CompletionRepository(session)
            if not await _auditable(repo, request):
                log.warning("inbound_unknown_tenant", reason=request.reason)
                return response
            parked_id = None
            outcome = "unauthorized" if error.status == 401 else "rejected"
            if isinstance(error, PersonNotFound) and request.ctx and request.report:
                parked_id = uuid7()
                await repo.park(
                    ParkedRequest(
                        tenant_id=request.tenant_id,
                        id=parked_id,
                        provider_id=request.provider_id,
                        key_id=request.key_id,
                        namespace=request.ctx.namespace,
                        person_digest=identifier_digest(request.report.person_id),
                        idempotency_key=request.idempotency_key,
                        body=body,
                        parked_at=request.received_at,
                        attempts=0,
                        resolved_at=None,
                        outcome=None,
                    )
                )
                outcome = "parked"
            await repo.audit(audit_row(request, outcome, error.status, parked_id=parked_id))
        log.info(
            "inbound_refused",
            provider_id=request.provider_id,
            key_id=request.key_id,
            status=error.status,
            reason=request.reason,
        )
        return response

    async def _audit_alone(self, request: InboundAttempt, outcome: str, status: int) -> None:
        async with self.database.transaction() as session:
            repo = CompletionRepository(session)
            if await _auditable(repo, request):
                await repo.audit(audit_row(request, outcome, status))


@asynccontextmanager
async def _session_store(database: Database) -> AsyncIterator[CompletionStore]:
    async with database.transaction() as session:
        yield SqlStore(session)


async def _auditable(repo: CompletionRepository, request: InboundAttempt) -> bool:
    """An unknown tenant has nothing to audit under (and nothing may tell a caller
    which tenants exist): such requests go to the log only."""
    return request.ctx is not None or await repo.tenant_exists(request.tenant_id)
