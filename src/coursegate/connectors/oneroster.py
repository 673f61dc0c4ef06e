"""The `oneroster` kind (SPEC §4): a OneRoster 1.2 rostering API's users, classes and
enrollments.

Each collection is read from its own watermark with the API's own filter
(`dateLastModified>'…'`), users first so that a page of enrollments finds the
people it names. A roster is not a seat purchase: its enrollments are created
directly, with no seat, saga, budget or invite, and keep the lifecycle rows and
events of any enrollment. Only students are taken: a teacher's record is skipped,
so the ledger holds nobody it has no use for.

- users: a student becomes (or updates) the person with the identifier
  `oneroster_sourced_id`, with their email (left out, and counted in the run's
  warnings, when it is not an address) and name; `tobedeleted` is skipped —
  a person is never deleted, their completions and credits stay facts.
- classes: `tobedeleted` cancels the live enrollments its records made.
- enrollments: a student's record in a class mapped to a course (the connector's
  `class_map` first, then courses whose `external_ids` name the class under
  `oneroster`) makes one enrollment, once per record `sourcedId`; `tobedeleted`
  cancels it (author `roster`). A record of an unmapped class is skipped; one whose
  user has not been pulled, or whose course is not active, is rejected, so that a
  replay takes it once the user or the course is there.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic_core import PydanticCustomError

from coursegate.connectors.http import PartnerClient, PermanentPartnerError
from coursegate.connectors.repository import RosterRepository
from coursegate.connectors.schemas import OneRosterConfig
from coursegate.connectors.source import (
    Context,
    Held,
    Page,
    Rejected,
    Taken,
    instant_or_none,
    short_id,
)
from coursegate.courses.repository import CourseRepository
from coursegate.courses.schemas import ROSTER_KEY
from coursegate.enrollments import lifecycle
from coursegate.enrollments.events import enrollment_event
from coursegate.enrollments.repository import EnrollmentRepository
from coursegate.enrollments.service import EnrollmentService
from coursegate.events.outbox import record_events
from coursegate.kit.fields import check_email
from coursegate.kit.ids import uuid7
from coursegate.kit.timefmt import format_instant
from coursegate.models import Enrollment
from coursegate.people.repository import PeopleRepository
from coursegate.people.service import PeopleService

PAGE_SIZE = 100
MAX_SOURCED_ID = 128
MAX_NAME = 256
NAMESPACE = "oneroster_sourced_id"
ROSTER_AUTHOR = "roster"
USERS, CLASSES, ENROLLMENTS = "users", "classes", "enrollments"
STUDENT = "student"
# `inactive` is 1.0's; the 1.2 description says to read it as `tobedeleted`.
STATUSES = {"active": False, "tobedeleted": True, "inactive": True}
UNUSABLE_EMAIL = "users kept without an email (the roster's is not an address)"


@dataclass(frozen=True, slots=True)
class _Record:
    raw: dict[str, Any]
    sourced_id: str
    deleted: bool


class OneRosterSource:
    collections = (USERS, CLASSES, ENROLLMENTS)

    def __init__(self, config: OneRosterConfig, page_size: int = PAGE_SIZE) -> None:
        self.config = config
        self.page_size = page_size

    @property
    def token_url(self) -> str:
        return self.config.token_url

    @property
    def scope(self) -> str | None:
        return self.config.scope

    async def pages(
        self, client: PartnerClient, since: Mapping[str, datetime | None]
    ) -> AsyncIterator[Page]:
        """Each collection to its end: the page that reaches `X-Total-Count`, or without
        that header an empty page. Never a short page alone: `limit` is a maximum, and a
        provider that caps its pages below it still has more to give."""
        base = self.config.collections_url
        for collection in self.collections:
            params: dict[str, str | int] = {"limit": self.page_size}
            mark = since.get(collection)
            if mark is not None:
                params["filter"] = f"dateLastModified>'{format_instant(mark)}'"
            offset = 0
            seen: set[str] = set()
            while True:
                body, headers = await client.get_page(
                    f"{base}/{collection}", {**params, "offset": offset}
                )
                records = body.get(collection) if isinstance(body, dict) else None
                if not isinstance(records, list):
                    raise PermanentPartnerError(
                        "invalid_response", f"a page of {collection} has no {collection} array"
                    )
                if not records:
                    break
                if _repeats(records, seen):
                    # Paging on would never end: fail the run (nothing is lost, the
                    # watermarks stay) rather than read the same page forever.
                    raise PermanentPartnerError(
                        "invalid_response",
                        f"the page of {collection} at offset {offset} repeats records already"
                        " read: the partner ignores offset",
                    )
                yield Page(collection, records)
                offset += len(records)
                total = _total(headers)
                if total is not None and offset >= total:
                    break

    async def settle(self, context: Context, *, force: bool) -> Held | None:
        """Cancel what the run withdrew, unless that is more than `hold_share` of a
        class's or of all the connector's live enrollments (and at least `hold_min`):
        a roster glitch must not unenroll a school, so such a run cancels nothing and
        waits for a person (`force` is their confirmation)."""
        assert context.run_id is not None
        roster = RosterRepository(context.session)
        withdrawn = await roster.withdrawn_live(context.tenant_id, context.run_id)
        if withdrawn and not force:
            held = await self._too_many(context, withdrawn)
            if held is not None:
                return held
        await _cancel(context, [enrollment for enrollment, _ in withdrawn])
        await roster.forget_withdrawn(context.tenant_id, context.run_id)
        return None

    async def _too_many(
        self, context: Context, withdrawn: list[tuple[uuid.UUID, str]]
    ) -> Held | None:
        by_class = Counter(class_id for _, class_id in withdrawn)
        live, total = await RosterRepository(context.session).live_counts(
            context.tenant_id, context.connector_id, by_class
        )
        share, least = self.config.hold_share, self.config.hold_min
        classes = sorted(
            c for c, n in by_class.items() if n >= least and n > share * live.get(c, 0)
        )
        count = len(withdrawn)
        if count >= least and count > share * total:
            reason = f"it would cancel {count} of the {total} live enrollments it made"
        elif classes:
            shown = ", ".join(f"{c} ({by_class[c]} of {live[c]})" for c in classes[:5])
            more = f" and {len(classes) - 5} more" if len(classes) > 5 else ""
            reason = f"it would cancel more than {share:.0%} of class {shown}{more}"
        else:
            return None
        return Held(reason=reason, would_cancel=count)

    async def discard(self, context: Context) -> int:
        assert context.run_id is not None
        return await RosterRepository(context.session).forget_withdrawn(
            context.tenant_id, context.run_id
        )

    async def take(self, context: Context, page: Page, since: datetime | None) -> Taken:
        taken = Taken()
        records: list[_Record] = []
        for entry in page.entries:
            record = _checked(entry, taken)
            if record is not None:
                records.append(record)
        if page.collection == USERS:
            await self._users(context, records, taken)
        elif page.collection == CLASSES:
            await self._classes(context, records, taken)
        else:
            await self._enrollments(context, records, taken)
        return taken

    async def _users(self, context: Context, records: list[_Record], taken: Taken) -> None:
        learners: dict[str, tuple[str | None, str | None]] = {}
        accepted = 0
        for record in records:
            if record.deleted or not _is_student(record.raw):
                taken.skipped += 1
                continue
            email = record.raw.get("email")
            if email is not None and not _valid_email(email):
                # A plain string in OneRoster 1.2, often empty for young students: the
                # student is kept, without it, and the run says how many.
                taken.warnings[UNUSABLE_EMAIL] += 1
                email = None
            learners[record.sourced_id] = (email, _name(record.raw))
            accepted += 1
        if not learners:
            return
        known = await PeopleRepository(context.session).taken(
            context.tenant_id, [(NAMESPACE, sourced_id) for sourced_id in learners]
        )
        await PeopleService(context.session, context.clock).find_or_create(
            context.tenant_id,
            NAMESPACE,
            [(sourced_id, email, name) for sourced_id, (email, name) in learners.items()],
        )
        created = len(learners) - len(known)
        taken.created += created
        taken.skipped += accepted - created  # known already, or listed twice in the page

    async def _classes(self, context: Context, records: list[_Record], taken: Taken) -> None:
        taken.skipped += len(records)
        deleted = {r.sourced_id for r in records if r.deleted}
        repo = RosterRepository(context.session)
        made = await repo.made_in_classes(context.tenant_id, context.connector_id, deleted)
        await _withdraw(context, made)

    async def _enrollments(self, context: Context, records: list[_Record], taken: Taken) -> None:
        tenant_id, now = context.tenant_id, context.now
        wanted: list[tuple[_Record, str, str]] = []
        for record in records:
            user = _ref(record.raw, "user")
            class_id = _ref(record.raw, "class")
            if user is None or class_id is None:
                field = "user" if user is None else "class"
                reason = (
                    f"{field}.sourcedId is missing or not a string of 1 to"
                    f" {MAX_SOURCED_ID} characters"
                )
                taken.rejected.append(Rejected(record.raw, reason, record.sourced_id))
                continue
            if record.raw.get("role") != STUDENT:
                taken.skipped += 1
                continue
            wanted.append((record, user, class_id))
        roster = RosterRepository(context.session)
        made = await roster.made(
            tenant_id, context.connector_id, {r.sourced_id for r, _, _ in wanted}
        )
        await _withdraw(
            context,
            [made[r.sourced_id] for r, _, _ in wanted if r.deleted and r.sourced_id in made],
        )
        courses = dict(
            await roster.courses_of_classes(
                tenant_id, ROSTER_KEY, {c for _, _, c in wanted} - set(self.config.class_map)
            )
        )
        courses.update(self.config.class_map)
        people = {
            row.value: row.person_id
            for row in await PeopleRepository(context.session).taken(
                tenant_id, [(NAMESPACE, user) for _, user, _ in wanted]
            )
        }
        enrollments = EnrollmentRepository(context.session)
        course_repo = CourseRepository(context.session)
        created: list[Enrollment] = []
        roster_rows: list[dict[str, Any]] = []
        lifecycle_rows: list[dict[str, Any]] = []
        for record, user, class_id in wanted:
            course_id = courses.get(class_id)
            if record.deleted or course_id is None or record.sourced_id in made:
                taken.skipped += 1
                continue
            course = await course_repo.get(tenant_id, course_id)
            person_id = people.get(user)
            if course is None or course.status != "active":
                reason = f"course {course_id} of class {class_id} is not active"
                taken.rejected.append(Rejected(record.raw, reason, record.sourced_id))
                continue
            if person_id is None:
                reason = f"user {user} has not been pulled"
                taken.rejected.append(Rejected(record.raw, reason, record.sourced_id))
                continue
            values = _enrollment_row(
                tenant_id, course_id, person_id, course.access_period_days, now
            )
            enrollment = Enrollment(**values)  # unsaved: for the lifecycle rows and the event
            if not await enrollments.insert_enrollments(tenant_id, course_id, [values], [], now):
                taken.skipped += 1  # a live enrollment of the person in the course exists
                continue
            made[record.sourced_id] = enrollment.id
            created.append(enrollment)
            lifecycle_rows += lifecycle.on_created(enrollment, course.access_period_days)
            roster_rows.append(
                {
                    "tenant_id": tenant_id,
                    "connector_id": context.connector_id,
                    "sourced_id": record.sourced_id,
                    "class_sourced_id": class_id,
                    "enrollment_id": enrollment.id,
                    "created_at": now,
                }
            )
        taken.created += len(created)
        if not created:
            return
        await roster.add(roster_rows)
        await enrollments.schedule(lifecycle_rows)
        learners = await enrollments.learners(tenant_id, [e.person_id for e in created])
        await record_events(
            context.session,
            tenant_id,
            [enrollment_event(e, learners[e.person_id].ref) for e in created],
            now,
        )


async def _withdraw(context: Context, enrollment_ids: list[uuid.UUID]) -> None:
    """The roster withdrew these. A run marks them and cancels at its end, once it knows
    how many it would cancel; a replay of rejects, which a person started, cancels now."""
    if context.run_id is None:
        await _cancel(context, enrollment_ids)
        return
    await RosterRepository(context.session).withdraw(
        context.tenant_id, context.connector_id, enrollment_ids, context.run_id
    )


async def _cancel(context: Context, enrollment_ids: list[uuid.UUID]) -> None:
    """Those still live are canceled, by the roster."""
    live = await RosterRepository(context.session).live_enrollments(
        context.tenant_id, enrollment_ids
    )
    for enrollment in live:
        enrollment.canceled_by = ROSTER_AUTHOR
    await EnrollmentService(context.session, context.clock, context.adapters).end(
        live, "canceled", None, context.now
    )


def _checked(entry: Any, taken: Taken) -> _Record | None:
    """What every record needs: an object with a `sourcedId`, a known `status` and a
    `dateLastModified` (the watermark is made of them)."""
    if not isinstance(entry, dict):
        taken.rejected.append(Rejected(entry, "the record is not a JSON object", None))
        return None
    modified = instant_or_none(entry.get("dateLastModified"))
    taken.saw(modified)
    sourced_id = short_id(entry.get("sourcedId"), MAX_SOURCED_ID)
    if sourced_id is None:
        reason = f"sourcedId is missing or not a string of 1 to {MAX_SOURCED_ID} characters"
        taken.rejected.append(Rejected(entry, reason, None))
        return None
    if modified is None:
        reason = "dateLastModified is not an RFC 3339 instant with an offset"
        taken.rejected.append(Rejected(entry, reason, sourced_id))
        return None
    status = entry.get("status")
    if status not in STATUSES:
        reason = "status is neither active nor tobedeleted"
        taken.rejected.append(Rejected(entry, reason, sourced_id))
        return None
    return _Record(entry, sourced_id, STATUSES[status])


def _repeats(records: list[Any], seen: set[str]) -> bool:
    """Whether every record of the page was on an earlier page of this collection (and
    remember this page's). Records without a usable `sourcedId` never count as repeats."""
    ids = [
        i
        for i in (
            short_id(r.get("sourcedId"), MAX_SOURCED_ID) for r in records if isinstance(r, dict)
        )
        if i
    ]
    repeated = bool(ids) and len(ids) == len(records) and all(i in seen for i in ids)
    seen.update(ids)
    return repeated


def _total(headers: Mapping[str, str]) -> int | None:
    """`X-Total-Count`; without it, only an empty page says the collection has ended."""
    value = headers.get("x-total-count", "").strip()
    return int(value) if value.isdigit() else None


def _ref(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return short_id(value.get("sourcedId"), MAX_SOURCED_ID) if isinstance(value, dict) else None


def _is_student(raw: dict[str, Any]) -> bool:
    """OneRoster 1.2 lists `roles`; 1.1 had one `role`."""
    roles = raw.get("roles")
    if isinstance(roles, list):
        return any(isinstance(r, dict) and r.get("role") == STUDENT for r in roles)
    return raw.get("role") == STUDENT


def _valid_email(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        check_email(value)
    except PydanticCustomError:
        return False
    return True


def _name(raw: dict[str, Any]) -> str | None:
    parts = [raw.get("givenName"), raw.get("familyName")]
    name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return name[:MAX_NAME] or None


def _enrollment_row(
    tenant_id: str, course_id: str, person_id: uuid.UUID, access_period_days: int, now: datetime
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "id": uuid7(),
        "course_id": course_id,
        "person_id": person_id,
        "seat_id": None,
        "batch_id": None,
        "status": "assigned",
        "reason": None,
        "dedup_window_days": None,
        "cancelable_until": None,
        "access_ends_at": now + timedelta(days=access_period_days),
        "created_at": now,
        "updated_at": now,
    }
