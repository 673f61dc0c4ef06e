"""All SQL about operators, their sessions, failed sign-ins and recorded actions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.models import ConsoleSession, LoginFailure, Operator, OperatorAction


class OperatorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: Operator | ConsoleSession | LoginFailure | OperatorAction) -> None:
        self.session.add(row)
        await self.session.flush()

    async def get(self, tenant_id: str, operator_id: uuid.UUID) -> Operator | None:
        return await self.session.get(Operator, (tenant_id, operator_id))

    async def by_email(self, tenant_id: str, email: str) -> Operator | None:
        return await self.session.scalar(
            select(Operator).where(Operator.tenant_id == tenant_id, Operator.email == email)
        )

    async def all(self, tenant_id: str) -> Sequence[Operator]:
        rows = await self.session.scalars(
            select(Operator).where(Operator.tenant_id == tenant_id).order_by(Operator.email)
        )
        return rows.all()

    async def flush(self) -> None:
        await self.session.flush()

    # Sessions

    async def session_by_digest(self, digest: str) -> tuple[ConsoleSession, Operator] | None:
        row = (
            await self.session.execute(
                select(ConsoleSession, Operator)
                .join(
                    Operator,
                    (Operator.tenant_id == ConsoleSession.tenant_id)
                    & (Operator.id == ConsoleSession.operator_id),
                )
                .where(ConsoleSession.digest == digest)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def end_sessions(
        self, tenant_id: str, at: datetime, *, operator_id: uuid.UUID, session_id: uuid.UUID | None
    ) -> None:
        """End one session of an operator, or (no `session_id`) all of them."""
        stmt = update(ConsoleSession).where(
            ConsoleSession.tenant_id == tenant_id,
            ConsoleSession.operator_id == operator_id,
            ConsoleSession.ended_at.is_(None),
        )
        if session_id is not None:
            stmt = stmt.where(ConsoleSession.id == session_id)
        await self.session.execute(stmt.values(ended_at=at))

    async def touch_session(self, tenant_id: str, session_id: uuid.UUID, at: datetime) -> None:
        await self.session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.tenant_id == tenant_id, ConsoleSession.id == session_id)
            .values(last_seen_at=at)
        )

    # Failed sign-ins

    async def failures_since(
        self, organisation: str, email: str, address: str, since: datetime
    ) -> tuple[list[datetime], list[datetime]]:
        """The failure times within the window: of this account, and of this address."""
        account = await self.session.scalars(
            select(LoginFailure.failed_at)
            .where(
                LoginFailure.organisation == organisation,
                LoginFailure.email == email,
                LoginFailure.failed_at >= since,
            )
            .order_by(LoginFailure.failed_at)
        )
        by_address = await self.session.scalars(
            select(LoginFailure.failed_at)
            .where(LoginFailure.address == address, LoginFailure.failed_at >= since)
            .order_by(LoginFailure.failed_at)
        )
        return list(account.all()), list(by_address.all())

    async def forget_failures(
        self, organisation: str, email: str, address: str, *, before: datetime
    ) -> None:
        """Drop this account's and address's failures that left the window."""
        await self.session.execute(
            delete(LoginFailure).where(
                or_(
                    (LoginFailure.organisation == organisation) & (LoginFailure.email == email),
                    LoginFailure.address == address,
                ),
                LoginFailure.failed_at < before,
            )
        )

    async def clear_account_failures(self, organisation: str, email: str) -> None:
        await self.session.execute(
            delete(LoginFailure).where(
                LoginFailure.organisation == organisation, LoginFailure.email == email
            )
        )

    # Recorded actions

    async def actions(
        self, tenant_id: str, *, before: uuid.UUID | None, limit: int
    ) -> Sequence[OperatorAction]:
        """Newest first; ids are time-ordered, so the primary key serves the order."""
        stmt = select(OperatorAction).where(OperatorAction.tenant_id == tenant_id)
        if before is not None:
            stmt = stmt.where(OperatorAction.id < before)
        rows = await self.session.scalars(stmt.order_by(OperatorAction.id.desc()).limit(limit))
        return rows.all()

    async def count_active_admins(self, tenant_id: str) -> int:
        count = await self.session.scalar(
            select(func.count())
            .select_from(Operator)
            .where(
                Operator.tenant_id == tenant_id,
                Operator.role == "admin",
                Operator.disabled_at.is_(None),
            )
        )
        return int(count or 0)
