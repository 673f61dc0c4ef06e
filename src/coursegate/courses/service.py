"""Courses' rules: the date rule, `draft → active`, an expired course frozen, and
idempotent seat orders (SPEC §3).

The order's `order_ref` is the idempotency key: a buyer's system that resends
an order after a timeout must not buy the seats twice, and one that reuses a
reference for a different order must hear about it (409) rather than get the
first order back as if it were the second.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.courses.repository import CourseRepository
from coursegate.courses.schemas import ROSTER_KEY, CourseCreate, CoursePatch, SeatOrderCreate
from coursegate.kit.clock import Clock
from coursegate.kit.errors import AlreadyExists, DomainError, NotFound, ValidationFailed
from coursegate.kit.ids import uuid7
from coursegate.models import Course, SeatOrder
from coursegate.programs.repository import ProgramRepository
from coursegate.providers.repository import ProviderRepository

DRAFT, ACTIVE, EXPIRED = "draft", "active", "expired"
SEAT_STATUSES = ("available", "reserved", "assigned", "spent", "rolled_back")


class CourseExpired(DomainError):
    """An expired course is history: its dates and seats are what its enrollments ran under."""

    code = "COURSE_EXPIRED"
    status = 409


@dataclass(frozen=True, slots=True)
class CourseView:
    course: Course
    external_ids: dict[str, str]


def check_dates(start_date: date, last_drop_date: date, end_date: date) -> None:
    """`start_date ≤ last_drop_date < end_date`, each failure named on the later date."""
    details: list[dict[str, str]] = []
    if last_drop_date < start_date:
        details.append(
            {
                "field": "last_drop_date",
                "constraint": "out_of_range",
                "message": "must not be before start_date",
            }
        )
    if end_date <= last_drop_date:
        details.append(
            {
                "field": "end_date",
                "constraint": "out_of_range",
                "message": "must be after last_drop_date",
            }
        )
    if details:
        raise ValidationFailed(details=details)


class CourseService:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.repo = CourseRepository(session)
        self.programs = ProgramRepository(session)
        self.providers = ProviderRepository(session)
        self.clock = clock

    async def create(self, tenant_id: str, body: CourseCreate) -> CourseView:
        check_dates(body.start_date, body.last_drop_date, body.end_date)
        await self._check_program(tenant_id, body.program_id)
        await self._check_providers(tenant_id, body.external_ids)
        if await self.repo.get(tenant_id, body.id) is not None:
            raise AlreadyExists(f"course {body.id} exists")
        await self._check_external_ids_free(tenant_id, body.id, body.external_ids)
        now = self.clock.now()
        course = Course(
            tenant_id=tenant_id,
            status=DRAFT,
            created_at=now,
            updated_at=now,
            **body.model_dump(exclude={"external_ids"}),
        )
        try:
            await self.repo.add(course)
        except IntegrityError:
            # A concurrent request created it between the check and the insert.
            raise AlreadyExists(f"course {body.id} exists") from None
        await self._store_external_ids(tenant_id, body.id, body.external_ids)
        return CourseView(course, dict(body.external_ids))

    async def get(self, tenant_id: str, course_id: str) -> CourseView:
        course = await self._course(tenant_id, course_id)
        mapping = await self.repo.external_ids_of(tenant_id, [course_id])
        return CourseView(course, mapping[course_id])

    async def update(self, tenant_id: str, course_id: str, patch: CoursePatch) -> CourseView:
        view = await self.get(tenant_id, course_id)
        course = view.course
        if course.status == EXPIRED:
            raise CourseExpired("an expired course cannot be changed")
        changes: dict[str, Any] = patch.model_dump(exclude_unset=True)
        new_mapping: Mapping[str, str] | None = changes.pop("external_ids", None)
        merged = {
            "start_date": course.start_date,
            "last_drop_date": course.last_drop_date,
            "end_date": course.end_date,
        } | {k: v for k, v in changes.items() if k.endswith("_date")}
        check_dates(merged["start_date"], merged["last_drop_date"], merged["end_date"])
        if "program_id" in changes:
            await self._check_program(tenant_id, changes["program_id"])
        mapping_changed = new_mapping is not None and dict(new_mapping) != view.external_ids
        if new_mapping is not None and mapping_changed:
            await self._check_providers(tenant_id, new_mapping)
            await self._check_external_ids_free(tenant_id, course_id, new_mapping)
        changed = {k: v for k, v in changes.items() if getattr(course, k) != v}
        if not changed and not mapping_changed:
            return view
        for name, value in changed.items():
            setattr(course, name, value)
        course.updated_at = self.clock.now()
        await self.repo.flush()
        if new_mapping is not None and mapping_changed:
            await self._store_external_ids(tenant_id, course_id, new_mapping, replace=True)
            return CourseView(course, dict(new_mapping))
        return CourseView(course, view.external_ids)

    async def activate(self, tenant_id: str, course_id: str) -> CourseView:
        """`draft → active`; activating an active course again changes nothing, so a
        retried call is harmless."""
        view = await self.get(tenant_id, course_id)
        course = view.course
        if course.status == EXPIRED:
            raise CourseExpired("an expired course cannot be activated")
        check_dates(course.start_date, course.last_drop_date, course.end_date)
        if course.status == DRAFT:
            course.status = ACTIVE
            course.updated_at = self.clock.now()
            await self.repo.flush()
        return view

    async def order_seats(
        self, tenant_id: str, course_id: str, body: SeatOrderCreate
    ) -> tuple[SeatOrder, bool]:
        """The order and whether this call created it (False: the same order again)."""
        course = await self._course(tenant_id, course_id)
        if course.status == EXPIRED:
            raise CourseExpired("seats cannot be added to an expired course")
        existing = await self.repo.get_order(tenant_id, body.order_ref)
        if existing is not None:
            return self._same_order(existing, course_id, body), False
        now = self.clock.now()
        order = SeatOrder(
            tenant_id=tenant_id,
            order_ref=body.order_ref,
            course_id=course_id,
            quantity=body.quantity,
            created_at=now,
        )
        if not await self.repo.add_order(order):
            # A concurrent request stored this order_ref between the check and the insert.
            winner = await self.repo.get_order(tenant_id, body.order_ref)
            if winner is None:  # pragma: no cover - the unique key said it exists
                raise AlreadyExists(f"order {body.order_ref} exists")
            return self._same_order(winner, course_id, body), False
        await self.repo.add_seats(
            [
                {
                    "tenant_id": tenant_id,
                    "id": uuid7(),
                    "course_id": course_id,
                    "order_ref": body.order_ref,
                    "status": "available",
                    "previously_dropped": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for _ in range(body.quantity)
            ]
        )
        return order, True

    async def seat_counts(self, tenant_id: str, course_id: str) -> dict[str, int]:
        await self._course(tenant_id, course_id)
        return _with_total(await self.repo.seat_counts(tenant_id, course_id))

    async def seat_counts_of(
        self, tenant_id: str, course_ids: Sequence[str]
    ) -> dict[str, dict[str, int]]:
        """The same counts for several of the tenant's courses at once (a list page)."""
        found = await self.repo.seat_counts_of(tenant_id, course_ids)
        return {course_id: _with_total(counts) for course_id, counts in found.items()}

    async def _course(self, tenant_id: str, course_id: str) -> Course:
        course = await self.repo.get(tenant_id, course_id)
        if course is None:
            raise NotFound()
        return course

    @staticmethod
    def _same_order(order: SeatOrder, course_id: str, body: SeatOrderCreate) -> SeatOrder:
        if order.course_id != course_id or order.quantity != body.quantity:
            raise AlreadyExists(f"order {body.order_ref} exists with another course or quantity")
        return order

    async def _check_program(self, tenant_id: str, program_id: str | None) -> None:
        if program_id is not None and await self.programs.get(tenant_id, program_id) is None:
            raise ValidationFailed.field("program_id", "invalid", "no such program")

    async def _check_providers(self, tenant_id: str, mapping: Mapping[str, str]) -> None:
        for provider_id in mapping:
            if provider_id == ROSTER_KEY:
                continue
            if await self.providers.get(tenant_id, provider_id) is None:
                raise ValidationFailed.field(
                    f"external_ids.{provider_id}", "invalid", "no such provider"
                )

    async def _check_external_ids_free(
        self, tenant_id: str, course_id: str, mapping: Mapping[str, str]
    ) -> None:
        taken = await self.repo.courses_of_external_ids(tenant_id, mapping)
        for (provider_id, external_id), owner in taken.items():
            if owner != course_id:
                raise AlreadyExists(
                    f"{provider_id} course {external_id} is already mapped to course {owner}"
                )

    async def _store_external_ids(
        self, tenant_id: str, course_id: str, mapping: Mapping[str, str], *, replace: bool = False
    ) -> None:
        try:
            await self.repo.replace_external_ids(tenant_id, course_id, mapping, replace=replace)
        except IntegrityError:
            # A concurrent request mapped one of these provider course ids to another course.
            raise AlreadyExists(
                "a provider course id is already mapped to another course"
            ) from None


def _with_total(found: Mapping[str, int]) -> dict[str, int]:
    counts = {status: found.get(status, 0) for status in SEAT_STATUSES}
    return {**counts, "total": sum(found.values())}
