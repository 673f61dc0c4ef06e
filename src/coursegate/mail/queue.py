"""The send queue: emails are queued in the caller's transaction and sent by `MailSender`.

An email cannot be taken back, so it is written as a row with the change
that warrants it and leaves only once that commits. `MailSender.step` drains
due rows in batches (driven by `coursegate.kit.loops.PollingLoop`):

1. claim: one short transaction takes due rows (`FOR UPDATE SKIP LOCKED` on
   PostgreSQL, so workers share the queue) and pushes `next_attempt_at` out
   by a lease, so that if this worker dies mid-send they fall due again
   (at-least-once);
2. send, a few at a time, outside any transaction;
3. record every result in one transaction: sent, retried later with backoff,
   or failed for good.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Annotated

import structlog
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.db import Database
from coursegate.kit.clock import Clock
from coursegate.mail.mailer import Address, Email, Mailer, MailError, Subject, check_sender
from coursegate.mail.repository import (
    ClaimedEmail,
    Failure,
    MailRepository,
    QueuedEmail,
    Retry,
)

log = structlog.get_logger(__name__)

BACKOFF: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(hours=24),
)
"""The wait after the 1st, 2nd, … failed attempt; the last one repeats."""


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th attempt failed transiently."""
    return BACKOFF[max(1, min(attempts, len(BACKOFF))) - 1]


class _NewEmail(BaseModel):
    to_address: Address
    subject: Subject
    kind: Annotated[str, Field(min_length=1, max_length=64)]


async def queue_email(
    session: AsyncSession,
    *,
    tenant_id: str,
    to_address: str,
    subject: str,
    body: str,
    kind: str,
    at: datetime,
) -> uuid.UUID:
    """Queue an email in the caller's transaction; it is sent only if that transaction commits.

    `kind` names what the email is for (`enrollment.invite`, say) and is what
    logs show instead of the content.
    """
    email = QueuedEmail(tenant_id, to_address, subject, body, kind)
    (email_id,) = await queue_emails(session, [email], at=at)
    return email_id


async def queue_emails(
    session: AsyncSession, emails: Sequence[QueuedEmail], *, at: datetime
) -> list[uuid.UUID]:
    """Queue several emails in one statement (a batch of invites or reminders).

    An address or subject that could not be sent (a line break in it, say)
    raises `ValueError` here rather than failing later.
    """
    for email in emails:
        _NewEmail(to_address=email.to_address, subject=email.subject, kind=email.kind)
    return await MailRepository(session).insert(emails, at)


@dataclass(frozen=True, slots=True)
class _NotTried:
    """Claimed, but too late in the lease to start sending."""


NOT_TRIED = _NotTried()
Outcome = MailError | _NotTried | None
"""None: sent."""


class MailSender:
    """Drains the send queue: `step()` claims a batch of due emails, sends them, records results.

    Timing within the lease: a send may start up to a quarter of the lease
    after the claim and may take up to half of it, so a live worker is done
    with its batch well before its lease runs out and no other worker sends
    the same email meanwhile. Emails not started in time are given back
    untried.
    """

    def __init__(
        self,
        database: Database,
        mailer: Mailer,
        clock: Clock,
        *,
        sender: str,
        batch: int = 50,
        lease_seconds: float = 120,
        max_attempts: int = 8,
        concurrency: int = 8,
    ) -> None:
        if batch < 1 or max_attempts < 1 or concurrency < 1:
            raise ValueError("batch, max_attempts and concurrency must be at least 1")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self._database = database
        self._mailer = mailer
        self._clock = clock
        self._sender = check_sender(sender)
        self._domain = parseaddr(sender)[1].rpartition("@")[2]
        self._batch = batch
        self._lease = timedelta(seconds=lease_seconds)
        self._start_budget = lease_seconds / 4
        self._send_timeout = lease_seconds / 2
        self._max_attempts = max_attempts
        self._concurrency = concurrency

    async def step(self) -> int:
        """One batch; returns how many emails it claimed (0: nothing was due)."""
        started = asyncio.get_running_loop().time()
        now = self._clock.now()
        async with self._database.transaction() as session:
            claimed = await MailRepository(session).claim_due(
                now, lease_until=now + self._lease, limit=self._batch
            )
        if not claimed:
            return 0

        limit = asyncio.Semaphore(self._concurrency)

        async def attempt(email: ClaimedEmail) -> Outcome:
            async with limit:
                if asyncio.get_running_loop().time() - started > self._start_budget:
                    return NOT_TRIED
                return await self._send(email)

        outcomes = await asyncio.gather(*(attempt(e) for e in claimed))
        await self._record(list(zip(claimed, outcomes, strict=True)))
        return len(claimed)

    async def _send(self, claimed: ClaimedEmail) -> MailError | None:
        try:
            email = Email(
                to_address=claimed.to_address,
                subject=claimed.subject,
                body=claimed.body,
                sender=self._sender,
                message_id=f"<{claimed.id}@{self._domain}>",
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            return MailError(False, f"invalid email: {problems}")
        try:
            async with asyncio.timeout(self._send_timeout):
                await self._mailer.send(email)
        except MailError as exc:
            return exc
        except TimeoutError:
            return MailError(True, f"no answer within {self._send_timeout:g}s")
        except Exception as exc:
            # A bug or an unexpected library error: keep the rest of the batch and retry later.
            log.exception("unexpected error sending email", email_id=claimed.id, kind=claimed.kind)
            return MailError(True, f"{type(exc).__name__}: {exc}")
        return None

    async def _record(self, results: list[tuple[ClaimedEmail, Outcome]]) -> None:
        at = self._clock.now()
        sent: list[ClaimedEmail] = []
        retries: list[Retry] = []
        failures: list[Failure] = []
        untried: list[ClaimedEmail] = []
        for email, outcome in results:
            fields = {"email_id": email.id, "tenant_id": email.tenant_id, "kind": email.kind}
            if outcome is None:
                sent.append(email)
                log.info("email sent", attempts=email.attempts, **fields)
            elif isinstance(outcome, _NotTried):
                untried.append(email)
            elif outcome.transient and email.attempts < self._max_attempts:
                retry_at = at + backoff(email.attempts)
                retries.append(Retry(email, retry_at, outcome.message))
                log.warning(
                    "email send failed, will retry",
                    attempts=email.attempts,
                    retry_at=retry_at.isoformat(),
                    **fields,
                )
            else:
                error = outcome.message
                if outcome.transient:
                    error = f"gave up after {email.attempts} attempts: {error}"
                failures.append(Failure(email, error))
                log.error(
                    "email send failed for good",
                    attempts=email.attempts,
                    transient=outcome.transient,
                    **fields,
                )
        if untried:
            log.info("emails given back untried (lease running out)", count=len(untried))
        async with self._database.transaction() as session:
            repository = MailRepository(session)
            await repository.mark_sent(sent, at)
            await repository.reschedule(retries)
            await repository.mark_failed(failures)
            await repository.release(untried, at)
