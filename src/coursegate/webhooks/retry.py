"""When to try a failed delivery again (SPEC §5).

The schedule is the one receivers know from other Standard Webhooks senders:
spread over about a day and a half, so a receiver down for a night still gets
everything. Jitter keeps many deliveries that failed together from all
coming back in the same second.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(SCHEDULE) + 1
"""The first attempt and one per step of the schedule."""
JITTER = 0.2


def retry_delay(
    attempts_made: int,
    rng: random.Random,
    retry_after: timedelta | None = None,
) -> timedelta | None:
    """The wait before the next attempt, or None when the schedule is spent.

    A receiver's `Retry-After` is honoured, but only within [step, twice the step]:
    a receiver cannot make us hammer it, nor park a message for a week.
    """
    if attempts_made >= MAX_ATTEMPTS:
        return None
    step = SCHEDULE[attempts_made - 1]
    if retry_after is not None:
        return min(max(retry_after, step), 2 * step)
    return step * rng.uniform(1 - JITTER, 1 + JITTER)


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Seconds or an HTTP date (RFC 9110); anything else is ignored, not an error."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        at = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(at - now, timedelta(0))
