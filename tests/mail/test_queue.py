"""The send queue, on SQLite and PostgreSQL, delivering to a real local SMTP server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
import structlog
from pydantic import ValidationError
from sqlalchemy import func, select

from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.mail.mailer import Email, Mailer, RecordingMailer, SmtpMailer
from coursegate.mail.queue import MailSender, backoff, queue_email
from coursegate.mail.repository import ClaimedEmail, MailRepository, Retry
from coursegate.models import OutboundEmail
from tests.conftest import T0
from tests.mail.conftest import SmtpServer, free_port

SENDER = "CourseGate <noreply@coursegate.example>"
BODY = "Hello Ada,\n\nyour seat in Financial Literacy is confirmed.\n"


async def _queue(
    database: Database,
    clock: FrozenClock,
    *,
    to_address: str = "ada@example.org",
    subject: str = "Seat confirmed",
    body: str = BODY,
    kind: str = "enrollment.confirmed",
) -> uuid.UUID:
    async with database.transaction() as session:
        return await queue_email(
            session,
            tenant_id="acme",
            to_address=to_address,
            subject=subject,
            body=body,
            kind=kind,
            at=clock.now(),
        )


async def _row(database: Database, email_id: uuid.UUID) -> OutboundEmail:
    async with database.transaction() as session:
        row = await session.get(OutboundEmail, ("acme", email_id))
    assert row is not None
    return row


def _sender(database: Database, mailer: Mailer, clock: FrozenClock, **options: Any) -> MailSender:
    return MailSender(database, mailer, clock, sender=SENDER, **options)


def _smtp(server: SmtpServer) -> SmtpMailer:
    return SmtpMailer(server.url, timeout=5)


pytestmark = pytest.mark.usefixtures("acme")  # every email here belongs to tenant `acme`


async def test_committed_email_is_delivered(
    database: Database, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    email_id = await _queue(database, clock)
    sender = _sender(database, _smtp(smtp_server), clock)

    with structlog.testing.capture_logs() as logs:
        assert await sender.step() == 1

    [received] = smtp_server.inbox.messages
    assert received.mail_from == "noreply@coursegate.example"
    assert received.rcpt_tos == ["ada@example.org"]
    assert received.message["From"] == SENDER
    assert received.message["To"] == "ada@example.org"
    assert received.message["Subject"] == "Seat confirmed"
    assert received.message["Message-ID"] == f"<{email_id}@coursegate.example>"
    assert received.message.get_content().replace("\r\n", "\n") == BODY

    row = await _row(database, email_id)
    assert (row.status, row.attempts, row.sent_at, row.last_error) == ("sent", 1, T0, None)
    assert await sender.step() == 0, "a sent email is not sent again"
    assert len(smtp_server.inbox.messages) == 1

    [sent_log] = [e for e in logs if e["event"] == "email sent"]
    assert sent_log["email_id"] == email_id
    assert sent_log["kind"] == "enrollment.confirmed"
    assert "Financial Literacy" not in repr(logs), "the body is not logged"
    assert "ada@example.org" not in repr(logs), "nor the address"


async def test_rolled_back_email_is_never_sent(
    database: Database, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    async def enrollment_that_fails() -> None:
        async with database.transaction() as session:
            await queue_email(
                session,
                tenant_id="acme",
                to_address="ada@example.org",
                subject="Seat confirmed",
                body=BODY,
                kind="enrollment.confirmed",
                at=clock.now(),
            )
            raise RuntimeError("enrollment failed")

    with pytest.raises(RuntimeError, match="enrollment failed"):
        await enrollment_that_fails()

    assert await _sender(database, _smtp(smtp_server), clock).step() == 0
    clock.advance(timedelta(days=1))
    assert await _sender(database, _smtp(smtp_server), clock).step() == 0
    assert smtp_server.inbox.messages == []
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(OutboundEmail)) == 0


async def test_4xx_is_retried_after_the_backoff(
    database: Database, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    email_id = await _queue(database, clock)
    sender = _sender(database, _smtp(smtp_server), clock)
    smtp_server.inbox.reply = "451 4.3.0 Mailbox busy, try again later"

    assert await sender.step() == 1
    row = await _row(database, email_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == T0 + timedelta(minutes=1)
    assert row.last_error == "451 4.3.0 Mailbox busy, try again later"

    clock.advance(timedelta(seconds=59))
    assert await sender.step() == 0, "not due before the backoff has passed"

    clock.advance(timedelta(seconds=1))
    assert await sender.step() == 1
    row = await _row(database, email_id)
    assert (row.attempts, row.next_attempt_at) == (2, clock.now() + timedelta(minutes=5))

    smtp_server.inbox.reply = None
    clock.advance(timedelta(minutes=5))
    assert await sender.step() == 1
    row = await _row(database, email_id)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 3, clock.now())
    assert row.last_error is None
    assert len(smtp_server.inbox.messages) == 1


async def test_5xx_fails_for_good(
    database: Database, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    email_id = await _queue(database, clock)
    sender = _sender(database, _smtp(smtp_server), clock)
    smtp_server.inbox.reply = "550 5.1.1 No such user here"

    assert await sender.step() == 1
    row = await _row(database, email_id)
    assert (row.status, row.attempts, row.sent_at) == ("failed", 1, None)
    assert row.last_error == "550 5.1.1 No such user here"

    smtp_server.inbox.reply = None
    clock.advance(timedelta(days=30))
    assert await sender.step() == 0, "a failed email is never retried"
    assert smtp_server.inbox.messages == []


async def test_server_down_is_transient(database: Database, clock: FrozenClock) -> None:
    email_id = await _queue(database, clock)
    mailer = SmtpMailer(f"smtp://127.0.0.1:{free_port()}", timeout=5)  # nothing listens there

    assert await _sender(database, mailer, clock).step() == 1
    row = await _row(database, email_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == T0 + timedelta(minutes=1)
    assert row.last_error


async def test_transient_failures_give_up_after_max_attempts(
    database: Database, clock: FrozenClock
) -> None:
    email_id = await _queue(database, clock)
    mailer = RecordingMailer()
    mailer.fail_next(3, message="421 4.7.0 Too many connections")
    sender = _sender(database, mailer, clock, max_attempts=3)

    for attempt in (1, 2):
        assert await sender.step() == 1
        row = await _row(database, email_id)
        assert (row.status, row.attempts) == ("pending", attempt)
        clock.advance(backoff(attempt))
    assert await sender.step() == 1
    row = await _row(database, email_id)
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.last_error == "gave up after 3 attempts: 421 4.7.0 Too many connections"
    clock.advance(timedelta(days=30))
    assert await sender.step() == 0
    assert mailer.sent == []


async def test_long_errors_are_cut_to_512(database: Database, clock: FrozenClock) -> None:
    email_id = await _queue(database, clock)
    mailer = RecordingMailer()
    mailer.fail_next(message="451 " + "é" * 2000)
    assert await _sender(database, mailer, clock).step() == 1
    row = await _row(database, email_id)
    assert row.last_error is not None
    assert len(row.last_error) == 512
    assert row.last_error.startswith("451 é")


async def test_a_crash_mid_send_is_retried_when_the_lease_runs_out(
    database: Database, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    email_id = await _queue(database, clock)
    # A worker claims the email and dies before recording anything.
    async with database.transaction() as session:
        [claimed] = await MailRepository(session).claim_due(
            clock.now(), lease_until=clock.now() + timedelta(seconds=120), limit=10
        )
    assert claimed.id == email_id

    sender = _sender(database, _smtp(smtp_server), clock, lease_seconds=120)
    assert await sender.step() == 0, "leased to the dead worker"
    clock.advance(timedelta(seconds=119))
    assert await sender.step() == 0
    assert smtp_server.inbox.messages == []

    clock.advance(timedelta(seconds=1))
    assert await sender.step() == 1
    row = await _row(database, email_id)
    assert (row.status, row.attempts) == ("sent", 2), "the lost attempt counts"
    assert len(smtp_server.inbox.messages) == 1


async def test_a_late_worker_does_not_overwrite_a_newer_claim(
    database: Database, clock: FrozenClock
) -> None:
    email_id = await _queue(database, clock)
    lease = timedelta(seconds=120)
    async with database.transaction() as session:
        [first] = await MailRepository(session).claim_due(
            clock.now(), lease_until=clock.now() + lease, limit=10
        )
    clock.advance(lease)
    async with database.transaction() as session:
        [second] = await MailRepository(session).claim_due(
            clock.now(), lease_until=clock.now() + lease, limit=10
        )
    assert (first.attempts, second.attempts) == (1, 2)

    # The first worker comes back with a failure, after its lease ran out: it is ignored.
    async with database.transaction() as session:
        await MailRepository(session).reschedule([Retry(first, clock.now(), "451 late")])
    row = await _row(database, email_id)
    assert (row.attempts, row.next_attempt_at, row.last_error) == (2, clock.now() + lease, None)

    # A success counts whoever reports it.
    async with database.transaction() as session:
        await MailRepository(session).mark_sent([first], clock.now())
    assert (await _row(database, email_id)).status == "sent"


async def test_batches_and_order(database: Database, clock: FrozenClock) -> None:
    ids = []
    for i in range(5):
        ids.append(await _queue(database, clock, subject=f"#{i}"))
        clock.advance(timedelta(seconds=1))
    mailer = RecordingMailer()
    sender = _sender(database, mailer, clock, batch=2)
    assert [await sender.step() for _ in range(4)] == [2, 2, 1, 0]
    assert [e.subject for e in mailer.sent] == [f"#{i}" for i in range(5)]
    assert {e.message_id for e in mailer.sent} == {f"<{i}@coursegate.example>" for i in ids}


class _SlowMailer:
    """Takes `seconds` for each send."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.sent: list[Email] = []

    async def send(self, email: Email) -> None:
        await asyncio.sleep(self.seconds)
        self.sent.append(email)


async def test_emails_not_started_in_time_are_given_back_untried(
    database: Database, clock: FrozenClock
) -> None:
    first = await _queue(database, clock, subject="first")
    clock.advance(timedelta(seconds=1))
    second = await _queue(database, clock, subject="second")
    # Lease 2 s: sends may start within 0.5 s of the claim. One at a time, the
    # first send (0.75 s) leaves no time to start the second.
    mailer = _SlowMailer(0.75)
    sender = _sender(database, mailer, clock, lease_seconds=2, concurrency=1)

    assert await sender.step() == 2
    assert [e.subject for e in mailer.sent] == ["first"]
    assert (await _row(database, first)).status == "sent"
    row = await _row(database, second)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, clock.now())

    mailer.seconds = 0
    assert await sender.step() == 1
    assert (await _row(database, second)).status == "sent"


async def test_a_send_that_hangs_is_cut_off_and_retried(
    database: Database, clock: FrozenClock
) -> None:
    email_id = await _queue(database, clock)
    sender = _sender(database, _SlowMailer(30), clock, lease_seconds=1)  # sends get 0.5 s

    assert await sender.step() == 1
    row = await _row(database, email_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "no answer within 0.5s"


class _BrokenMailer:
    async def send(self, email: Email) -> None:
        raise KeyError("bug")


async def test_an_unexpected_error_is_transient(database: Database, clock: FrozenClock) -> None:
    email_id = await _queue(database, clock)
    with structlog.testing.capture_logs():
        assert await _sender(database, _BrokenMailer(), clock).step() == 1
    row = await _row(database, email_id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "KeyError: 'bug'")


async def test_queue_refuses_what_could_not_be_sent(database: Database, clock: FrozenClock) -> None:
    for bad in (
        {"to_address": "ada@example.org\r\nBcc: all@example.org"},
        {"subject": "Hi\nBcc: all@example.org"},
        {"kind": ""},
    ):
        with pytest.raises(ValidationError):
            await _queue(database, clock, **bad)


async def test_a_failure_does_not_hold_up_the_rest_of_the_batch(
    database: Database, clock: FrozenClock
) -> None:
    ids = [await _queue(database, clock, subject=f"#{i}") for i in range(3)]
    mailer = RecordingMailer()
    mailer.fail_next(transient=False)
    assert await _sender(database, mailer, clock, concurrency=1).step() == 3
    statuses = [(await _row(database, i)).status for i in ids]
    assert statuses == ["failed", "sent", "sent"]


# --- PostgreSQL: several workers share the queue -------------------------------------------


@pytest.mark.postgres_only
async def test_two_workers_send_each_email_exactly_once(
    database: Database, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    ids = [await _queue(database, clock, subject=f"#{i}") for i in range(40)]
    other_process = Database(database.url, pool_size=2)
    try:
        senders = [
            _sender(database, _smtp(smtp_server), clock, batch=5),
            _sender(other_process, _smtp(smtp_server), clock, batch=5),
        ]

        async def drain(sender: MailSender) -> int:
            total = 0
            while handled := await sender.step():
                total += handled
            return total

        totals = await asyncio.gather(*(drain(s) for s in senders))
    finally:
        await other_process.dispose()

    assert sum(totals) == 40
    received = sorted(str(m.message["Subject"]) for m in smtp_server.inbox.messages)
    assert received == sorted(f"#{i}" for i in range(40))
    async with database.transaction() as session:
        rows = (await session.execute(select(OutboundEmail.id, OutboundEmail.status))).all()
    assert sorted(rows) == sorted((i, "sent") for i in ids)


class _WorkerDied(Exception):
    pass


@pytest.mark.postgres_only
async def test_a_claim_in_progress_is_skipped_not_waited_for(
    database: Database, clock: FrozenClock
) -> None:
    ids = [await _queue(database, clock, subject=f"#{i}") for i in range(40)]
    mailer = RecordingMailer()
    sender = _sender(database, mailer, clock, batch=100)
    locked: list[ClaimedEmail] = []

    async def worker_that_dies_while_claiming() -> None:
        async with database.transaction() as session:
            # Its claim is not committed yet, so its rows stay locked.
            locked.extend(
                await MailRepository(session).claim_due(
                    clock.now(), lease_until=clock.now() + timedelta(minutes=2), limit=10
                )
            )
            assert await asyncio.wait_for(sender.step(), timeout=10) == 30
            raise _WorkerDied

    with pytest.raises(_WorkerDied):
        await worker_that_dies_while_claiming()
    assert len(locked) == 10

    assert {e.message_id for e in mailer.sent}.isdisjoint(
        {f"<{c.id}@coursegate.example>" for c in locked}
    )
    assert await sender.step() == 10, "a claim rolled back leaves the rows due"
    assert sorted(str(e.message_id) for e in mailer.sent) == sorted(
        f"<{i}@coursegate.example>" for i in ids
    )
