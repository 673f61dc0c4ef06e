"""The send queue's SQL: queue, claim with a lease, and record what happened.

A claim counts as an attempt (`attempts` goes up when the row is claimed, not
when the result is recorded), so an email whose sending kills the worker
runs out of attempts like any other failure instead of crashing workers
forever. Results are recorded only if the row is still the one claimed (same
`attempts`): a worker that overran its lease does not overwrite what the
worker that reclaimed the row decides; a success is recorded regardless.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Update, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.kit.ids import uuid7
from coursegate.kit.sql import dialect_of, insert_rows
from coursegate.models import OutboundEmail
from coursegate.models.base import table_of
from coursegate.models.webhooks import PENDING

_T = table_of(OutboundEmail)
_KEY = (
    _T.c.tenant_id == bindparam("k_tenant"),
    _T.c.id == bindparam("k_id"),
    PENDING,
)
# Updates by key, run once per row (executemany); the SET columns come from the
# parameters, named like the columns.
_UPDATE_CLAIMED: Update = update(_T).where(*_KEY, _T.c.attempts == bindparam("k_attempts"))
_UPDATE_PENDING: Update = update(_T).where(*_KEY)

PENDING_STATUS = "pending"
SENT = "sent"
FAILED = "failed"
LAST_ERROR_LENGTH = 512


@dataclass(frozen=True, slots=True)
class QueuedEmail:
    tenant_id: str
    to_address: str
    subject: str
    body: str
    kind: str


@dataclass(frozen=True, slots=True)
class ClaimedEmail:
    tenant_id: str
    id: uuid.UUID
    kind: str
    to_address: str
    subject: str
    body: str
    attempts: int
    """Including the one this claim is for."""


@dataclass(frozen=True, slots=True)
class Retry:
    email: ClaimedEmail
    next_attempt_at: datetime
    error: str


@dataclass(frozen=True, slots=True)
class Failure:
    email: ClaimedEmail
    error: str


def _key(email: ClaimedEmail) -> dict[str, Any]:
    return {"k_tenant": email.tenant_id, "k_id": email.id, "k_attempts": email.attempts}


def _cut(error: str) -> str:
    return error[:LAST_ERROR_LENGTH]


class MailRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, emails: Sequence[QueuedEmail], at: datetime) -> list[uuid.UUID]:
        """Pending emails, due at once, in one statement; they go only if the caller's
        transaction commits."""
        ids = [uuid7() for _ in emails]
        if emails:
            await insert_rows(
                self.session,
                _T,
                [
                    {
                        "tenant_id": email.tenant_id,
                        "id": email_id,
                        "to_address": email.to_address,
                        "subject": email.subject,
                        "body": email.body,
                        "kind": email.kind,
                        "status": PENDING_STATUS,
                        "attempts": 0,
                        "next_attempt_at": at,
                        "last_error": None,
                        "created_at": at,
                        "sent_at": None,
                    }
                    for email_id, email in zip(ids, emails, strict=True)
                ],
            )
        return ids

    async def claim_due(
        self, now: datetime, *, lease_until: datetime, limit: int
    ) -> list[ClaimedEmail]:
        """Take up to `limit` due emails, oldest due first, and lease them until `lease_until`.

        On PostgreSQL rows another worker is claiming are skipped rather than
        waited for; on SQLite the transaction holds the write lock from its
        start (`BEGIN IMMEDIATE`), so claims are serialised anyway.
        """
        due = (
            select(
                _T.c.tenant_id,
                _T.c.id,
                _T.c.kind,
                _T.c.to_address,
                _T.c.subject,
                _T.c.body,
                _T.c.attempts,
            )
            .where(PENDING, _T.c.next_attempt_at <= now)
            .order_by(_T.c.next_attempt_at)
            .limit(limit)
        )
        if dialect_of(self.session) == "postgresql":
            due = due.with_for_update(skip_locked=True)
        rows = (await self.session.execute(due)).all()
        if not rows:
            return []
        claimed = [
            ClaimedEmail(
                tenant_id=row.tenant_id,
                id=row.id,
                kind=row.kind,
                to_address=row.to_address,
                subject=row.subject,
                body=row.body,
                attempts=row.attempts + 1,
            )
            for row in rows
        ]
        await self.session.execute(
            _UPDATE_PENDING,
            [
                {
                    "k_tenant": c.tenant_id,
                    "k_id": c.id,
                    "attempts": c.attempts,
                    "next_attempt_at": lease_until,
                }
                for c in claimed
            ],
        )
        return claimed

    async def mark_sent(self, emails: Sequence[ClaimedEmail], at: datetime) -> None:
        if not emails:
            return
        await self.session.execute(
            _UPDATE_PENDING,
            [
                {
                    "k_tenant": e.tenant_id,
                    "k_id": e.id,
                    "status": SENT,
                    "sent_at": at,
                    "last_error": None,
                }
                for e in emails
            ],
        )

    async def reschedule(self, retries: Sequence[Retry]) -> None:
        """Transient failures: try again at `next_attempt_at`."""
        if not retries:
            return
        await self.session.execute(
            _UPDATE_CLAIMED,
            [
                {
                    **_key(r.email),
                    "next_attempt_at": r.next_attempt_at,
                    "last_error": _cut(r.error),
                }
                for r in retries
            ],
        )

    async def mark_failed(self, failures: Sequence[Failure]) -> None:
        """Permanent failures, and transient ones out of attempts: never tried again."""
        if not failures:
            return
        await self.session.execute(
            _UPDATE_CLAIMED,
            [{**_key(f.email), "status": FAILED, "last_error": _cut(f.error)} for f in failures],
        )

    async def release(self, emails: Sequence[ClaimedEmail], at: datetime) -> None:
        """Give back claimed emails that were never tried: due at `at`, the attempt not counted."""
        if not emails:
            return
        await self.session.execute(
            _UPDATE_CLAIMED,
            [{**_key(e), "attempts": e.attempts - 1, "next_attempt_at": at} for e in emails],
        )
