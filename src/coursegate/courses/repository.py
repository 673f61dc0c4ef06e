"""All SQL about courses, their provider course ids, seat orders and seats."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.models import Course, CourseExternalId, Seat, SeatOrder

# Both databases cap one statement at 32,766 parameters; a seat row has seven.
SEATS_PER_INSERT = 2000


class CourseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str, course_id: str) -> Course | None:
        return await self.session.get(Course, (tenant_id, course_id))

    async def add(self, course: Course) -> None:
        self.session.add(course)
        await self.session.flush()

    async def flush(self) -> None:
        await self.session.flush()

    async def list(
        self,
        tenant_id: str,
        *,
        after: str | None,
        limit: int,
        status: str | None = None,
        program_id: str | None = None,
    ) -> Sequence[Course]:
        stmt = select(Course).where(Course.tenant_id == tenant_id)
        if status is not None:
            stmt = stmt.where(Course.status == status)
        if program_id is not None:
            stmt = stmt.where(Course.program_id == program_id)
        if after is not None:
            stmt = stmt.where(Course.id > after)
        return (await self.session.scalars(stmt.order_by(Course.id).limit(limit))).all()

    async def external_ids_of(
        self, tenant_id: str, course_ids: Sequence[str]
    ) -> dict[str, dict[str, str]]:
        """`{course_id: {provider_id: external id}}` for several courses in one query."""
        stmt = (
            select(CourseExternalId)
            .where(
                CourseExternalId.tenant_id == tenant_id,
                CourseExternalId.course_id.in_(course_ids),
            )
            .order_by(CourseExternalId.provider_id)
        )
        grouped: dict[str, dict[str, str]] = {c: {} for c in course_ids}
        for row in (await self.session.scalars(stmt)).all():
            grouped[row.course_id][row.provider_id] = row.external_id
        return grouped

    async def courses_of_external_ids(
        self, tenant_id: str, mapping: Mapping[str, str]
    ) -> dict[tuple[str, str], str]:
        """Which course each `(provider_id, external id)` already names, if any."""
        if not mapping:
            return {}
        stmt = select(CourseExternalId).where(
            CourseExternalId.tenant_id == tenant_id,
            or_(
                *(
                    and_(
                        CourseExternalId.provider_id == provider_id,
                        CourseExternalId.external_id == external_id,
                    )
                    for provider_id, external_id in mapping.items()
                )
            ),
        )
        return {
            (row.provider_id, row.external_id): row.course_id
            for row in (await self.session.scalars(stmt)).all()
        }

    async def replace_external_ids(
        self, tenant_id: str, course_id: str, mapping: Mapping[str, str], *, replace: bool
    ) -> None:
        """Store a course's mapping; with `replace`, the previous mapping goes first."""
        if replace:
            await self.session.execute(
                delete(CourseExternalId).where(
                    CourseExternalId.tenant_id == tenant_id,
                    CourseExternalId.course_id == course_id,
                )
            )
        if mapping:
            await self.session.execute(
                insert(CourseExternalId).values(
                    [
                        {
                            "tenant_id": tenant_id,
                            "provider_id": provider_id,
                            "external_id": external_id,
                            "course_id": course_id,
                        }
                        for provider_id, external_id in mapping.items()
                    ]
                )
            )

    async def get_order(self, tenant_id: str, order_ref: str) -> SeatOrder | None:
        return await self.session.get(SeatOrder, (tenant_id, order_ref), populate_existing=True)

    async def add_order(self, order: SeatOrder) -> bool:
        """Insert the order; False when the tenant already has one with that `order_ref`
        (a concurrent request won). The savepoint keeps the transaction usable."""
        try:
            async with self.session.begin_nested():
                self.session.add(order)
                await self.session.flush()
        except IntegrityError:
            return False
        return True

    async def add_seats(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Seats in multi-row INSERTs, without loading them as objects."""
        for start in range(0, len(rows), SEATS_PER_INSERT):
            await self.session.execute(insert(Seat).values(rows[start : start + SEATS_PER_INSERT]))

    async def seat_counts(self, tenant_id: str, course_id: str) -> dict[str, int]:
        stmt = (
            select(Seat.status, func.count())
            .where(Seat.tenant_id == tenant_id, Seat.course_id == course_id)
            .group_by(Seat.status)
        )
        counts: dict[str, int] = {}
        for status, count in (await self.session.execute(stmt)).all():
            counts[status] = count
        return counts

    async def seat_counts_of(
        self, tenant_id: str, course_ids: Sequence[str]
    ) -> dict[str, dict[str, int]]:
        """`{course_id: {status: count}}` for several courses in one query."""
        counts: dict[str, dict[str, int]] = {c: {} for c in course_ids}
        if not course_ids:
            return counts
        stmt = (
            select(Seat.course_id, Seat.status, func.count())
            .where(Seat.tenant_id == tenant_id, Seat.course_id.in_(course_ids))
            .group_by(Seat.course_id, Seat.status)
        )
        for course_id, status, count in (await self.session.execute(stmt)).all():
            counts[course_id][status] = count
        return counts
