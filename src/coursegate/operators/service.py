"""Operators' rules: accounts, signing in with throttling, sessions, and the record of actions."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.kit.clock import Clock
from coursegate.kit.errors import AlreadyExists, DomainError, NotFound, ValidationFailed
from coursegate.kit.fields import check_email, check_field
from coursegate.kit.ids import uuid7
from coursegate.models import ConsoleSession, LoginFailure, Operator, OperatorAction
from coursegate.operators import passwords
from coursegate.operators.repository import OperatorRepository
from coursegate.operators.roles import Role

log = structlog.get_logger(__name__)

IDLE_TIMEOUT = timedelta(hours=8)
# A session's last-seen time is written at most this often, not on every page.
TOUCH_INTERVAL = timedelta(minutes=1)
THROTTLE_WINDOW = timedelta(minutes=15)
THROTTLE_FAILURES = 5
ADDRESS_LENGTH = 64


class Throttled(DomainError):
    code = "TOO_MANY_ATTEMPTS"
    status = 429

    def __init__(self, retry_at: datetime) -> None:
        super().__init__("too many failed sign-ins")
        self.retry_at = retry_at


class LastAdmin(DomainError):
    code = "LAST_ADMIN"
    status = 409


@dataclass(slots=True)
class SignInAttempt:
    """What was typed (normalised) and the hash the password must match."""

    organisation: str
    email: str
    address: str
    password_hash: str | None


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: the cookie's value (shown to the browser once) and who it is."""

    token: str
    session: ConsoleSession
    operator: Operator


@dataclass(frozen=True, slots=True)
class Current:
    """Who is behind a request's session cookie, as plain values: they outlive the request's
    transaction (a refused action rolls it back, and the error page still needs them)."""

    tenant_id: str
    session_id: uuid.UUID
    csrf_token: str
    operator_id: uuid.UUID
    email: str
    role: Role


def normalise_email(email: str) -> str:
    return email.strip().lower()


def session_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class OperatorService:
    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self.repo = OperatorRepository(session)
        self.clock = clock

    # Accounts

    async def create(self, tenant_id: str, email: str, role: str) -> tuple[Operator, str]:
        """A new operator and its generated password, which is returned this once."""
        email = check_field(check_email, "email", normalise_email(email))
        checked_role = _role(role)
        if await self.repo.by_email(tenant_id, email) is not None:
            raise AlreadyExists(f"operator {email} exists")
        password = passwords.generate()
        now = self.clock.now()
        operator = Operator(
            tenant_id=tenant_id,
            id=uuid7(),
            email=email,
            role=str(checked_role),
            password_hash=await passwords.hash_password(password),
            created_at=now,
            updated_at=now,
            disabled_at=None,
        )
        await self.repo.add(operator)
        return operator, password

    async def all(self, tenant_id: str) -> Sequence[Operator]:
        return await self.repo.all(tenant_id)

    async def find(self, tenant_id: str, email_or_id: str) -> Operator:
        """By email (the CLI's way) or id (the console's)."""
        operator: Operator | None
        try:
            operator = await self.repo.get(tenant_id, uuid.UUID(email_or_id))
        except ValueError:
            operator = await self.repo.by_email(tenant_id, normalise_email(email_or_id))
        if operator is None:
            raise NotFound(f"no operator {email_or_id}")
        return operator

    async def disable(self, tenant_id: str, email_or_id: str) -> Operator:
        """Disabling ends the operator's sessions at once; the last active admin stays."""
        operator = await self.find(tenant_id, email_or_id)
        if operator.disabled_at is None:
            if operator.role == Role.ADMIN and await self.repo.count_active_admins(tenant_id) <= 1:
                raise LastAdmin("a tenant keeps at least one active admin")
            now = self.clock.now()
            operator.disabled_at = now
            operator.updated_at = now
            await self.repo.end_sessions(tenant_id, now, operator_id=operator.id, session_id=None)
            await self.repo.flush()
        return operator

    async def reset_password(self, tenant_id: str, email_or_id: str) -> tuple[Operator, str]:
        """A new generated password; every session signed in with the old one ends."""
        operator = await self.find(tenant_id, email_or_id)
        password = passwords.generate()
        now = self.clock.now()
        operator.password_hash = await passwords.hash_password(password)
        operator.updated_at = now
        await self.repo.end_sessions(tenant_id, now, operator_id=operator.id, session_id=None)
        await self.repo.flush()
        return operator, password

    # Signing in

    async def check_throttle(self, organisation: str, email: str, address: str) -> None:
        """Refuse before any password is checked once the account or the address has failed
        too often within the window; say when the oldest failure leaves it."""
        now = self.clock.now()
        account, by_address = await self.repo.failures_since(
            organisation, normalise_email(email), address[:ADDRESS_LENGTH], now - THROTTLE_WINDOW
        )
        blocking = [times for times in (account, by_address) if len(times) >= THROTTLE_FAILURES]
        if blocking:
            # The earliest time at which neither is over the limit any more.
            retry_at = max(times[-THROTTLE_FAILURES] for times in blocking) + THROTTLE_WINDOW
            raise Throttled(retry_at)

    async def begin_sign_in(self, organisation: str, email: str, address: str) -> SignInAttempt:
        """The first half of signing in: refused if throttled, else what the password must
        match (None when there is no such active operator).

        The password is checked between the halves, outside any transaction: Argon2 takes
        ~150 ms, and on SQLite a transaction held that long would stall every request."""
        attempt = SignInAttempt(
            organisation=organisation.strip().lower(),
            email=normalise_email(email),
            address=address[:ADDRESS_LENGTH],
            password_hash=None,
        )
        await self.check_throttle(attempt.organisation, attempt.email, attempt.address)
        if attempt.organisation:
            operator = await self.repo.by_email(attempt.organisation, attempt.email)
            if operator is not None and operator.disabled_at is None:
                attempt.password_hash = operator.password_hash
        return attempt

    async def finish_sign_in(self, attempt: SignInAttempt, matched: bool) -> SignedIn | None:
        """A session when the password matched the hash read in the first half and the
        operator is still the same and active; otherwise a recorded failure and None,
        whatever was wrong, so the page cannot tell which."""
        operator = await self.repo.by_email(attempt.organisation, attempt.email)
        if (
            not matched
            or operator is None
            or operator.disabled_at is not None
            or operator.password_hash != attempt.password_hash
        ):
            await self._record_failure(attempt.organisation, attempt.email, attempt.address)
            return None
        await self.repo.clear_account_failures(attempt.organisation, attempt.email)
        now = self.clock.now()
        token = secrets.token_urlsafe(32)
        row = ConsoleSession(
            tenant_id=operator.tenant_id,
            id=uuid7(),
            digest=session_digest(token),
            operator_id=operator.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            ended_at=None,
        )
        await self.repo.add(row)
        log.info("console_sign_in", tenant=operator.tenant_id, operator=str(operator.id))
        return SignedIn(token=token, session=row, operator=operator)

    async def _record_failure(self, organisation: str, email: str, address: str) -> None:
        now = self.clock.now()
        await self.repo.forget_failures(organisation, email, address, before=now - THROTTLE_WINDOW)
        await self.repo.add(
            LoginFailure(
                id=uuid7(),
                organisation=organisation[:63],
                email=email[:320],
                address=address,
                failed_at=now,
            )
        )
        log.warning("console_sign_in_failed", organisation=organisation, address=address)

    # Sessions

    async def current(self, token: str) -> Current | None:
        """The live session behind a cookie: not ended, not idle too long, operator enabled."""
        if not token:
            return None
        found = await self.repo.session_by_digest(session_digest(token))
        if found is None:
            return None
        row, operator = found
        now = self.clock.now()
        if row.ended_at is not None or operator.disabled_at is not None:
            return None
        if now - row.last_seen_at > IDLE_TIMEOUT:
            await self.repo.end_sessions(
                row.tenant_id, now, operator_id=operator.id, session_id=row.id
            )
            return None
        if now - row.last_seen_at >= TOUCH_INTERVAL:
            await self.repo.touch_session(row.tenant_id, row.id, now)
        return Current(
            tenant_id=row.tenant_id,
            session_id=row.id,
            csrf_token=row.csrf_token,
            operator_id=operator.id,
            email=operator.email,
            role=Role(operator.role),
        )

    async def sign_out(self, current: Current) -> None:
        await self.repo.end_sessions(
            current.tenant_id,
            self.clock.now(),
            operator_id=current.operator_id,
            session_id=current.session_id,
        )

    # The record of actions

    async def record(
        self,
        operator: Current,
        verb: str,
        object_type: str,
        object_id: str,
        outcome: str,
        detail: dict[str, object] | None = None,
    ) -> OperatorAction:
        action = OperatorAction(
            tenant_id=operator.tenant_id,
            id=uuid7(),
            operator_id=operator.operator_id,
            operator_email=operator.email,
            verb=verb,
            object_type=object_type,
            object_id=object_id[:128],
            outcome=outcome,
            detail=detail,
            acted_at=self.clock.now(),
        )
        await self.repo.add(action)
        return action

    async def actions(
        self, tenant_id: str, *, before: uuid.UUID | None = None, limit: int = 100
    ) -> Sequence[OperatorAction]:
        return await self.repo.actions(tenant_id, before=before, limit=limit)


def csrf_matches(current: Current, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(current.csrf_token, presented)


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValidationFailed.field("role", "invalid", "one of admin, operator, viewer") from None
