"""What a connector kind provides to a run: its pages, and what writing one page does.

The runner owns everything kinds share (the run lock, one transaction per page,
rejects and their events, counters, the watermark moved last); a kind only reads
its partner's collections and writes one page's entries. That keeps "a new kind
is one adapter" (SPEC §4) true.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic_core import PydanticCustomError
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.connectors.http import PartnerClient
from coursegate.enrollments.adapters import Adapters
from coursegate.kit.clock import Clock
from coursegate.kit.timefmt import parse_instant


@dataclass(frozen=True, slots=True)
class Page:
    collection: str
    entries: list[Any]


@dataclass(frozen=True, slots=True)
class Rejected:
    raw: Any
    reason: str
    external_id: str | None


@dataclass(slots=True)
class Taken:
    """What writing one page did. `newest` is the latest partner timestamp among every
    entry of the page that carried a readable one, whatever became of the entry: a bad
    entry must not pin the watermark."""

    created: int = 0
    skipped: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    newest: datetime | None = None
    warnings: Counter[str] = field(default_factory=Counter)
    """Entries taken with something left out, by what (e.g. "users kept without an
    email"): the run says how many, so a person can look, and nobody is turned away."""

    def saw(self, at: datetime | None) -> None:
        if at is not None and (self.newest is None or at > self.newest):
            self.newest = at


@dataclass(frozen=True, slots=True)
class Context:
    """One page's unit of work. `adapters` do nothing on a dry run, whose writes are
    rolled back: the outside systems must not see what the database forgets."""

    session: AsyncSession
    tenant_id: str
    connector_id: str
    clock: Clock
    adapters: Adapters
    now: datetime
    run_id: uuid.UUID | None = None
    """The run writing the page; None for a replay of rejects, which a person started."""


@dataclass(frozen=True, slots=True)
class Held:
    """A run's end put off for a person: what it would do, and why it did not."""

    reason: str
    would_cancel: int


class Source(Protocol):
    @property
    def token_url(self) -> str: ...

    @property
    def scope(self) -> str | None:
        """The OAuth scope to ask the token endpoint for (None: ask for none)."""
        ...

    @property
    def collections(self) -> tuple[str, ...]:
        """The partner's collections, in the order a run reads them; the first is where a
        reject stored without one came from."""
        ...

    def pages(
        self, client: PartnerClient, since: Mapping[str, datetime | None]
    ) -> AsyncIterator[Page]:
        """Every page of every collection, each read from its own `since` (None: all)."""
        ...

    async def settle(self, context: Context, *, force: bool) -> Held | None:
        """At the end of a run (`context.run_id`), do what the run put off until it had
        seen everything; or hold it for a person (None: done). `force` is that person's
        confirmation."""
        ...

    async def discard(self, context: Context) -> int:
        """Forget what a held run put off; how many it was."""
        ...

    async def take(self, context: Context, page: Page, since: datetime | None) -> Taken:
        """Write a page (or one stored reject, `since` None): whatever it creates and the
        events that say so, in `context.session`; rejects are the runner's to store."""
        ...


def instant_or_none(value: Any) -> datetime | None:
    """An RFC 3339 instant with an offset, read as the API reads its own inputs; or None."""
    if not isinstance(value, str):
        return None
    try:
        return parse_instant(value)
    except PydanticCustomError:
        return None


def short_id(value: Any, limit: int) -> str | None:
    """A partner's identifier: a string of 1 to `limit` characters, or None."""
    if isinstance(value, str) and 0 < len(value) <= limit:
        return value
    return None
