"""All SQL about connectors, their runs, rejects and what they create: authorizations
and roster enrollments."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.kit.sql import dialect_insert, dialect_of, insert_rows
from coursegate.kit.timefmt import parse_instant
from coursegate.models import (
    Authorization,
    Connector,
    ConnectorReject,
    ConnectorRun,
    Course,
    CourseExternalId,
    Enrollment,
    RosterEnrollment,
)
from coursegate.models.base import table_of
from coursegate.models.connectors import RUNNING
from coursegate.models.enrollments import LIVE_STATUSES

_AUTHORIZATIONS = table_of(Authorization)
_REJECTS = table_of(ConnectorReject)
SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])
_RUNS = table_of(ConnectorRun)
_ROSTER = table_of(RosterEnrollment)


def stored_watermarks(connector: Connector) -> dict[str, datetime]:
    """The connector's watermark of each collection, as instants."""
    return {c: parse_instant(at) for c, at in (connector.watermarks or {}).items()}


class ConnectorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str, connector_id: str) -> Connector | None:
        return await self.session.get(Connector, (tenant_id, connector_id))

    async def add(self, connector: Connector) -> None:
        self.session.add(connector)
        await self.session.flush()

    async def flush(self) -> None:
        await self.session.flush()

    async def delete(self, connector: Connector) -> None:
        """The connector with its runs and rejects; the authorizations it created stay
        (they are facts other systems were told about)."""
        for table in (_RUNS, _REJECTS):
            await self.session.execute(
                table.delete().where(
                    table.c.tenant_id == connector.tenant_id,
                    table.c.connector_id == connector.id,
                )
            )
        await self.session.delete(connector)
        await self.session.flush()

    async def list(
        self, tenant_id: str, *, after: str | None, limit: int, kind: str | None = None
    ) -> Sequence[Connector]:
        stmt = select(Connector).where(Connector.tenant_id == tenant_id)
        if kind is not None:
            stmt = stmt.where(Connector.kind == kind)
        if after is not None:
            stmt = stmt.where(Connector.id > after)
        return (await self.session.scalars(stmt.order_by(Connector.id).limit(limit))).all()

    async def enabled(self) -> Sequence[Connector]:
        """Every enabled connector of every tenant: what the scheduler looks at each minute."""
        stmt = select(Connector).where(Connector.enabled.is_(True))
        return (await self.session.scalars(stmt.order_by(Connector.tenant_id, Connector.id))).all()

    async def existing_course_ids(self, tenant_id: str, course_ids: Collection[str]) -> set[str]:
        """Which of these ids name a course of the tenant, in one query."""
        if not course_ids:
            return set()
        stmt = select(Course.id).where(
            Course.tenant_id == tenant_id, Course.id.in_(list(course_ids))
        )
        return set((await self.session.scalars(stmt)).all())

    async def advance_watermarks(
        self, tenant_id: str, connector_id: str, seen: Mapping[str, datetime], now: datetime
    ) -> None:
        """Each collection's only forward: one where a run saw nothing newer keeps its
        own. `watermark` is the greatest of them."""
        connector = await self.get(tenant_id, connector_id)
        if connector is None:
            return
        marks = stored_watermarks(connector)
        moved = {c: at for c, at in seen.items() if c not in marks or at > marks[c]}
        if not moved:
            return
        marks.update(moved)
        connector.watermarks = {c: at.isoformat() for c, at in sorted(marks.items())}
        connector.watermark = max(marks.values())
        connector.updated_at = now
        await self.session.flush()

    # --- runs -------------------------------------------------------------------------

    async def get_run(self, tenant_id: str, run_id: uuid.UUID) -> ConnectorRun | None:
        return await self.session.get(ConnectorRun, (tenant_id, run_id))

    async def abandon_stale(
        self, tenant_id: str, connector_id: str, before: datetime, now: datetime
    ) -> None:
        """A `running` run whose heartbeat stopped before `before` died with its process."""
        await self.session.execute(
            update(_RUNS)
            .where(
                _RUNS.c.tenant_id == tenant_id,
                _RUNS.c.connector_id == connector_id,
                _RUNS.c.status == "running",
                _RUNS.c.heartbeat_at < before,
            )
            .values(
                status="failed",
                ended_at=now,
                error_class="abandoned",
                message="the process running it stopped",
            )
        )

    async def start_run(self, values: Mapping[str, Any]) -> bool:
        """Insert a `running` run; False if one of the connector is already running."""
        stmt = dialect_insert(dialect_of(self.session), _RUNS).values(dict(values))
        stmt = stmt.on_conflict_do_nothing(
            index_elements=["tenant_id", "connector_id"], index_where=RUNNING
        ).returning(_RUNS.c.id)
        return (await self.session.execute(stmt)).first() is not None

    async def update_run(
        self, tenant_id: str, run_id: uuid.UUID, values: Mapping[str, Any]
    ) -> None:
        await self.session.execute(
            update(_RUNS)
            .where(_RUNS.c.tenant_id == tenant_id, _RUNS.c.id == run_id)
            .values(dict(values))
        )

    async def runs(
        self, tenant_id: str, connector_id: str, *, after: uuid.UUID | None, limit: int
    ) -> Sequence[ConnectorRun]:
        """Newest first."""
        stmt = select(ConnectorRun).where(
            ConnectorRun.tenant_id == tenant_id, ConnectorRun.connector_id == connector_id
        )
        if after is not None:
            stmt = stmt.where(ConnectorRun.id < after)
        return (
            await self.session.scalars(stmt.order_by(ConnectorRun.id.desc()).limit(limit))
        ).all()

    async def last_runs(
        self, tenant_id: str, connector_ids: Collection[str]
    ) -> dict[str, ConnectorRun]:
        """The newest run of each of these connectors, in one query."""
        if not connector_ids:
            return {}
        newest = (
            select(ConnectorRun.connector_id, ConnectorRun.id)
            .where(
                ConnectorRun.tenant_id == tenant_id,
                ConnectorRun.connector_id.in_(list(connector_ids)),
            )
            .order_by(ConnectorRun.connector_id, ConnectorRun.id.desc())
        )
        found: dict[str, ConnectorRun] = {}
        rows = (await self.session.execute(newest)).all()
        latest: dict[str, uuid.UUID] = {}
        for connector_id, run_id in rows:
            latest.setdefault(connector_id, run_id)
        if latest:
            stmt = select(ConnectorRun).where(
                ConnectorRun.tenant_id == tenant_id, ConnectorRun.id.in_(list(latest.values()))
            )
            for run in (await self.session.scalars(stmt)).all():
                found[run.connector_id] = run
        return found

    # --- rejects ----------------------------------------------------------------------

    async def record_rejects(
        self, tenant_id: str, connector_id: str, rows: Sequence[Mapping[str, Any]]
    ) -> Sequence[Mapping[str, Any]]:
        """Store a page's rejects once per record and version (`digest`): one seen before
        gets this run and reason (staying resolved if a replay took it); the rest are
        inserted, and returned — only they are news."""
        if not rows:
            return []
        digests = list({row["digest"] for row in rows})
        known = set(
            (
                await self.session.scalars(
                    select(_REJECTS.c.digest).where(
                        _REJECTS.c.tenant_id == tenant_id,
                        _REJECTS.c.connector_id == connector_id,
                        _REJECTS.c.digest.in_(digests),
                    )
                )
            ).all()
        )
        fresh: dict[str, Mapping[str, Any]] = {}
        again: dict[str, Mapping[str, Any]] = {}
        for row in rows:
            (again if row["digest"] in known else fresh).setdefault(row["digest"], row)
        await insert_rows(self.session, _REJECTS, list(fresh.values()))
        if again:
            await self.session.execute(
                update(_REJECTS)
                .where(
                    _REJECTS.c.tenant_id == tenant_id,
                    _REJECTS.c.connector_id == connector_id,
                    _REJECTS.c.digest == bindparam("k_digest"),
                )
                .values(run_id=bindparam("k_run"), reason=bindparam("k_reason"))
                .execution_options(synchronize_session=False),
                [
                    {"k_digest": d, "k_run": row["run_id"], "k_reason": row["reason"]}
                    for d, row in again.items()
                ],
            )
        return list(fresh.values())

    async def rejects(
        self,
        tenant_id: str,
        connector_id: str,
        *,
        after: uuid.UUID | None,
        limit: int,
        open_only: bool = False,
    ) -> Sequence[ConnectorReject]:
        stmt = select(ConnectorReject).where(
            ConnectorReject.tenant_id == tenant_id, ConnectorReject.connector_id == connector_id
        )
        if open_only:
            stmt = stmt.where(ConnectorReject.resolved_at.is_(None))
        if after is not None:
            stmt = stmt.where(ConnectorReject.id > after)
        return (await self.session.scalars(stmt.order_by(ConnectorReject.id).limit(limit))).all()

    async def mark_replayed(
        self, tenant_id: str, reject_ids: Sequence[uuid.UUID], now: datetime, *, resolved: bool
    ) -> None:
        if not reject_ids:
            return
        values: dict[str, Any] = {"replayed_at": now}
        if resolved:
            values["resolved_at"] = now
        await self.session.execute(
            update(_REJECTS)
            .where(_REJECTS.c.tenant_id == tenant_id, _REJECTS.c.id.in_(list(reject_ids)))
            .values(values)
        )

    # --- authorizations ---------------------------------------------------------------

    async def insert_authorizations(self, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        """Insert-or-ignore on `(tenant, connector, external id)`; the external ids that
        were new."""
        created = await insert_rows(
            self.session,
            _AUTHORIZATIONS,
            rows,
            skip_conflicts_on=("tenant_id", "connector_id", "external_id"),
            returning="external_id",
        )
        return set(created)

    async def authorizations(
        self,
        tenant_id: str,
        *,
        after: uuid.UUID | None,
        limit: int,
        connector_id: str | None = None,
        type_: str | None = None,
    ) -> Sequence[Authorization]:
        stmt = select(Authorization).where(Authorization.tenant_id == tenant_id)
        if connector_id is not None:
            stmt = stmt.where(Authorization.connector_id == connector_id)
        if type_ is not None:
            stmt = stmt.where(Authorization.type == type_)
        if after is not None:
            stmt = stmt.where(Authorization.id > after)
        return (await self.session.scalars(stmt.order_by(Authorization.id).limit(limit))).all()


class RosterRepository:
    """The SQL of a roster: which course a class names, and the enrollments records made."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def courses_of_classes(
        self, tenant_id: str, key: str, class_ids: Collection[str]
    ) -> dict[str, str]:
        """Class `sourcedId` → course, for the courses whose `external_ids` name the class
        under `key`."""
        if not class_ids:
            return {}
        stmt = select(CourseExternalId.external_id, CourseExternalId.course_id).where(
            CourseExternalId.tenant_id == tenant_id,
            CourseExternalId.provider_id == key,
            CourseExternalId.external_id.in_(list(class_ids)),
        )
        return dict((await self.session.execute(stmt)).all())

    async def made(
        self, tenant_id: str, connector_id: str, sourced_ids: Collection[str]
    ) -> dict[str, uuid.UUID]:
        """Enrollment record `sourcedId` → the enrollment it made."""
        if not sourced_ids:
            return {}
        stmt = select(RosterEnrollment.sourced_id, RosterEnrollment.enrollment_id).where(
            RosterEnrollment.tenant_id == tenant_id,
            RosterEnrollment.connector_id == connector_id,
            RosterEnrollment.sourced_id.in_(list(sourced_ids)),
        )
        return dict((await self.session.execute(stmt)).all())

    async def made_in_classes(
        self, tenant_id: str, connector_id: str, class_ids: Collection[str]
    ) -> list[uuid.UUID]:
        if not class_ids:
            return []
        stmt = select(RosterEnrollment.enrollment_id).where(
            RosterEnrollment.tenant_id == tenant_id,
            RosterEnrollment.connector_id == connector_id,
            RosterEnrollment.class_sourced_id.in_(list(class_ids)),
        )
        return list((await self.session.scalars(stmt)).all())

    async def withdraw(
        self,
        tenant_id: str,
        connector_id: str,
        enrollment_ids: Collection[uuid.UUID],
        run_id: uuid.UUID,
    ) -> None:
        """Mark what the run found withdrawn; the cancellations wait for the run's end."""
        if not enrollment_ids:
            return
        await self.session.execute(
            update(RosterEnrollment)
            .where(
                RosterEnrollment.tenant_id == tenant_id,
                RosterEnrollment.connector_id == connector_id,
                RosterEnrollment.enrollment_id.in_(list(enrollment_ids)),
            )
            .values(withdrawn_by_run=run_id)
        )

    async def withdrawn_live(
        self, tenant_id: str, run_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, str]]:
        """`(enrollment, class)` of what the run withdrew that is still live."""
        stmt = _live_roster(
            select(RosterEnrollment.enrollment_id, RosterEnrollment.class_sourced_id), tenant_id
        ).where(RosterEnrollment.withdrawn_by_run == run_id)
        return [(e, c) for e, c in (await self.session.execute(stmt)).all()]

    async def live_counts(
        self, tenant_id: str, connector_id: str, class_ids: Collection[str]
    ) -> tuple[dict[str, int], int]:
        """Live enrollments the connector made, in each of these classes and in all."""
        base = (
            _live_roster(select(RosterEnrollment.class_sourced_id, func.count()), tenant_id)
            .where(RosterEnrollment.connector_id == connector_id)
            .group_by(RosterEnrollment.class_sourced_id)
        )
        per_class = {c: int(n) for c, n in (await self.session.execute(base)).all()}
        return {c: per_class.get(c, 0) for c in class_ids}, sum(per_class.values())

    async def forget_withdrawn(self, tenant_id: str, run_id: uuid.UUID) -> int:
        result = await self.session.execute(
            update(RosterEnrollment)
            .where(
                RosterEnrollment.tenant_id == tenant_id,
                RosterEnrollment.withdrawn_by_run == run_id,
            )
            .values(withdrawn_by_run=None)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def live_enrollments(
        self, tenant_id: str, enrollment_ids: Collection[uuid.UUID]
    ) -> list[Enrollment]:
        """Those still live, locked for the transition that ends them."""
        if not enrollment_ids:
            return []
        stmt = (
            select(Enrollment)
            .where(
                Enrollment.tenant_id == tenant_id,
                Enrollment.id.in_(list(enrollment_ids)),
                Enrollment.status.in_(LIVE_STATUSES),
            )
            .order_by(Enrollment.id)
            .with_for_update()
        )
        return list((await self.session.scalars(stmt)).all())

    async def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        await insert_rows(self.session, _ROSTER, rows)


def _live_roster(stmt: SelectT, tenant_id: str) -> SelectT:
    """A tenant's roster rows whose enrollment is still live."""
    return stmt.join(
        Enrollment,
        (Enrollment.tenant_id == RosterEnrollment.tenant_id)
        & (Enrollment.id == RosterEnrollment.enrollment_id),
    ).where(RosterEnrollment.tenant_id == tenant_id, Enrollment.status.in_(LIVE_STATUSES))
