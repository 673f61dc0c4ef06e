"""What MailSender decides without a database: the retry schedule and its own settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.mail.mailer import RecordingMailer
from coursegate.mail.queue import BACKOFF, MailSender, backoff


def test_backoff_schedule() -> None:
    minutes = [backoff(n) / timedelta(minutes=1) for n in range(1, 10)]
    assert minutes[:4] == [1, 5, 30, 120]
    assert minutes == sorted(minutes)
    assert backoff(50) == BACKOFF[-1]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"sender": "not an address"}, "address"),
        ({"sender": "noreply@example.org\r\nBcc: x@example.org"}, "control"),
        ({"batch": 0}, "at least 1"),
        ({"max_attempts": 0}, "at least 1"),
        ({"concurrency": 0}, "at least 1"),
        ({"lease_seconds": 0}, "positive"),
    ],
)
async def test_settings_are_checked_up_front(options: dict[str, Any], match: str) -> None:
    database = Database("sqlite+aiosqlite:///:memory:")
    try:
        arguments: dict[str, Any] = {"sender": "noreply@example.org", **options}
        with pytest.raises(ValueError, match=match):
            MailSender(
                database,
                RecordingMailer(),
                FrozenClock(datetime(2026, 6, 10, tzinfo=UTC)),
                **arguments,
            )
    finally:
        await database.dispose()
