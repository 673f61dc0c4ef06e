"""The scheduled lifecycle events of SPEC §3's table: which rows a transition creates,
moves or cancels. Pure functions of an enrollment; the repository stores the rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from coursegate.models import Enrollment

REMINDER_NO_ACCESS = "reminder_no_access_3_days"
NO_ACTIVITY = "no_activity_7_days"
ACCESS_PERIOD_REMINDER = "access_period_reminder_30_days"
COURSE_EXPIRED = "course_expired"
CERT_EXPIRATION_REMINDER = "cert_expiration_reminder_30_days"
COURSE_ARCHIVED = "course_archived"

REMINDERS = frozenset(
    {REMINDER_NO_ACCESS, NO_ACTIVITY, ACCESS_PERIOD_REMINDER, CERT_EXPIRATION_REMINDER}
)
WHILE_LIVE = (REMINDER_NO_ACCESS, NO_ACTIVITY, ACCESS_PERIOD_REMINDER, COURSE_EXPIRED)
"""Rows that mean nothing once the enrollment is no longer live: an ending cancels them."""

NO_ACCESS_AFTER = timedelta(days=3)
NO_ACTIVITY_AFTER = timedelta(days=7)
REMINDER_BEFORE = timedelta(days=30)


def row(enrollment: Enrollment, kind: str, due_at: datetime) -> dict[str, Any]:
    return {
        "tenant_id": enrollment.tenant_id,
        "enrollment_id": enrollment.id,
        "kind": kind,
        "due_at": due_at,
    }


def on_created(enrollment: Enrollment, access_period_days: int) -> list[dict[str, Any]]:
    """The no-access reminder, the access-period reminder (only if the period is longer
    than 30 days: otherwise it would be due at once) and the expiry."""
    created, ends = enrollment.created_at, enrollment.access_ends_at
    rows = [row(enrollment, REMINDER_NO_ACCESS, created + NO_ACCESS_AFTER)]
    if access_period_days > REMINDER_BEFORE.days:
        rows.append(row(enrollment, ACCESS_PERIOD_REMINDER, ends - REMINDER_BEFORE))
    rows.append(row(enrollment, COURSE_EXPIRED, ends))
    return rows


def on_activity(enrollment: Enrollment) -> list[dict[str, Any]]:
    """Seven days after the latest activity; each activity moves it."""
    assert enrollment.last_activity_at is not None
    return [row(enrollment, NO_ACTIVITY, enrollment.last_activity_at + NO_ACTIVITY_AFTER)]


def on_completed(enrollment: Enrollment) -> list[dict[str, Any]]:
    """With a certificate: its expiry archives the enrollment, and a reminder comes 30
    days before unless the certificate runs 30 days or less."""
    expires = enrollment.certificate_expires_at
    if expires is None or enrollment.completed_at is None:
        return []
    rows = []
    if expires - REMINDER_BEFORE > enrollment.completed_at:
        rows.append(row(enrollment, CERT_EXPIRATION_REMINDER, expires - REMINDER_BEFORE))
    rows.append(row(enrollment, COURSE_ARCHIVED, expires))
    return rows
