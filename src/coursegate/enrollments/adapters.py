"""The outside systems an enrollment touches: a credit budget and group membership (SPEC §6).

Both are Protocols so that a deployment plugs in its own accounting system
and identity provider. Every operation is idempotent and takes a batch:
a durable workflow re-runs a step whose outcome it did not record, and a
saga of 500 learners should not make 500 round trips one after another.

The built-in implementation is a fake that keeps its state in a small
SQLite file of its own (`var_dir/fake-partners.db`), so that it survives a
restart like a real partner would: the tests that kill a process mid-saga
check what is left there afterwards, and `coursegate demo` runs on it.
`fake_adapter_faults` makes an operation fail or hang, for those tests and
for seeing a compensation happen.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.config import Settings
from coursegate.mail.queue import queue_emails
from coursegate.mail.repository import QueuedEmail

FAKE_FILE = "fake-partners.db"


class PartnerError(Exception):
    """An outside system refused or failed; the saga undoes what it did."""


class Accounting(Protocol):
    async def fund(self, accounts: Sequence[str], credits: int) -> None:
        """Open each account with `credits`; an account that exists is left as it is."""

    async def withdraw(self, accounts: Sequence[str]) -> None:
        """Undo `fund`: the accounts are gone, as if never opened."""

    async def deplete(self, accounts: Sequence[str]) -> None:
        """Take what remains out of each account (a drop, an expiry); the account stays."""


class IdentityProvider(Protocol):
    async def grant(self, group: str, members: Sequence[str]) -> None:
        """Make each member a member of the group."""

    async def revoke(self, group: str, members: Sequence[str]) -> None:
        """Remove each member from the group; a non-member is no error."""


class Invitations(Protocol):
    async def queue(
        self, session: AsyncSession, invites: Sequence[QueuedEmail], at: datetime
    ) -> None:
        """Queue the invites in the caller's transaction: they leave only if it commits."""


class QueuedInvitations:
    """Invites go through the send queue (`outbound_emails`), drained over SMTP."""

    def __init__(self, faults: dict[str, str] | None = None) -> None:
        self.faults = dict(faults or {})

    async def queue(
        self, session: AsyncSession, invites: Sequence[QueuedEmail], at: datetime
    ) -> None:
        mode = self.faults.get("mailer.invite")
        if mode == "stall":
            await asyncio.Event().wait()
        if mode == "fail":
            raise PartnerError("mailer.invite failed (injected)")
        await queue_emails(session, invites, at=at)


class _Inert:
    """Every operation does nothing: for work whose database writes are rolled back (a
    connector's dry run), so the outside systems never see what did not happen."""

    async def fund(self, accounts: Sequence[str], credits: int) -> None:
        return None

    async def withdraw(self, accounts: Sequence[str]) -> None:
        return None

    async def deplete(self, accounts: Sequence[str]) -> None:
        return None

    async def grant(self, group: str, members: Sequence[str]) -> None:
        return None

    async def revoke(self, group: str, members: Sequence[str]) -> None:
        return None

    async def queue(
        self, session: AsyncSession, invites: Sequence[QueuedEmail], at: datetime
    ) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Adapters:
    accounting: Accounting
    identity: IdentityProvider
    invitations: Invitations

    @classmethod
    def inert(cls) -> Adapters:
        inert = _Inert()
        return cls(accounting=inert, identity=inert, invitations=inert)


def parse_faults(spec: str) -> dict[str, str]:
    """`accounting.fund=fail,identity.grant=stall` → `{operation: fail|stall}`."""
    faults: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        operation, _, mode = item.partition("=")
        if mode not in ("fail", "stall"):
            raise ValueError(f"fault {item!r}: say `operation=fail` or `operation=stall`")
        faults[operation.strip()] = mode
    return faults


class FakePartners:
    """Accounting and identity provider in one SQLite file, shared by every process
    that names the same file."""

    def __init__(self, path: Path, faults: dict[str, str] | None = None) -> None:
        self.path = path
        self.faults = dict(faults or {})
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS budgets"
                " (account TEXT PRIMARY KEY, funded INTEGER NOT NULL, balance INTEGER NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS members"
                " (grp TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY (grp, member))"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        # A stand-in for a remote system: durability against power loss is not its job.
        db.execute("PRAGMA synchronous=OFF")
        try:
            with db:
                yield db
        finally:
            db.close()

    async def _call(self, operation: str, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        mode = self.faults.get(operation)
        if mode == "stall":
            await asyncio.Event().wait()
        if mode == "fail":
            raise PartnerError(f"{operation} failed (injected)")
        if rows:
            # A fake's local file: written inline rather than on the loop's default
            # executor, which DBOS replaces and shuts down with itself.
            self._write(sql, rows)

    def _write(self, sql: str, rows: Sequence[tuple[object, ...]]) -> None:
        with self._connect() as db:
            db.executemany(sql, rows)

    async def fund(self, accounts: Sequence[str], credits: int) -> None:
        await self._call(
            "accounting.fund",
            "INSERT OR IGNORE INTO budgets (account, funded, balance) VALUES (?, ?, ?)",
            [(a, credits, credits) for a in accounts],
        )

    async def withdraw(self, accounts: Sequence[str]) -> None:
        await self._call(
            "accounting.withdraw", "DELETE FROM budgets WHERE account = ?", [(a,) for a in accounts]
        )

    async def deplete(self, accounts: Sequence[str]) -> None:
        await self._call(
            "accounting.deplete",
            "UPDATE budgets SET balance = 0 WHERE account = ?",
            [(a,) for a in accounts],
        )

    async def grant(self, group: str, members: Sequence[str]) -> None:
        await self._call(
            "identity.grant",
            "INSERT OR IGNORE INTO members (grp, member) VALUES (?, ?)",
            [(group, m) for m in members],
        )

    async def revoke(self, group: str, members: Sequence[str]) -> None:
        await self._call(
            "identity.revoke",
            "DELETE FROM members WHERE grp = ? AND member = ?",
            [(group, m) for m in members],
        )

    def balances(self) -> dict[str, int]:
        """What each account holds (for tests and the demo)."""
        with self._connect() as db:
            return dict(db.execute("SELECT account, balance FROM budgets").fetchall())

    def members(self, group: str) -> set[str]:
        with self._connect() as db:
            rows = db.execute("SELECT member FROM members WHERE grp = ?", (group,)).fetchall()
        return {member for (member,) in rows}


def adapters_from_settings(settings: Settings) -> Adapters:
    faults = parse_faults(settings.fake_adapter_faults)
    fake = FakePartners(settings.var_dir / FAKE_FILE, faults)
    return Adapters(accounting=fake, identity=fake, invitations=QueuedInvitations(faults))
