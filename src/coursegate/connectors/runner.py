"""One run of a connector: the run lock, page after page committed, the watermark last.

The order of commits is the whole design (SPEC §4):

1. the run is recorded as `running`, which takes the connector's lock (a
   partial unique index: a second run of the same connector is refused, and a
   run whose process died stops holding it once its heartbeat is an hour old);
2. each page is written in its own transaction as it arrives (the next one is
   fetched meanwhile): what the kind makes of it, keyed on the partner's ids
   so that nothing is made twice, and rejects with their raw entry; every two
   seconds the run's counters and heartbeat move with a page, so memory holds
   two pages and a crash loses nothing committed;
3. only after the last page, in the run's last transaction, each collection's
   watermark moves, and only forward: a run that fails anywhere leaves them
   untouched, and the re-run finds its earlier pages written and creates
   nothing twice.

`--since` runs read from another point and `--dry-run` runs roll back what they
write, so neither moves a watermark. A run that fails for good (the client has
already retried what was transient) is recorded with its error class and
emits `connector.run.failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.connectors.datapass import DataPassSource
from coursegate.connectors.http import (
    PartnerClient,
    PartnerError,
    PermanentPartnerError,
    RetryPolicy,
    Sleep,
)
from coursegate.connectors.oneroster import OneRosterSource
from coursegate.connectors.repository import ConnectorRepository, stored_watermarks
from coursegate.connectors.schemas import DatapassConfig, OneRosterConfig
from coursegate.connectors.source import Context, Held, Page, Source, Taken
from coursegate.db import Database
from coursegate.enrollments.adapters import Adapters
from coursegate.events.outbox import NewEvent, record_events
from coursegate.kit.clock import Clock
from coursegate.kit.errors import DomainError, NotFound
from coursegate.kit.ids import uuid7
from coursegate.kit.secrets import SecretStores, SecretUnavailable
from coursegate.kit.timefmt import format_instant
from coursegate.models import Connector, ConnectorRun

log = structlog.get_logger(__name__)

T = TypeVar("T")

RUN_STALE_AFTER = timedelta(hours=1)
"""Longer than the worst page: five tries with 30 s timeouts and capped backoff or
`Retry-After` waits. A run silent for longer than this died with its process."""
MESSAGE_LENGTH = 512
HEARTBEAT_EVERY = timedelta(seconds=2)
HELD = "held"
"""A run that would cancel too many enrollments, waiting for a person (SPEC §5)."""
"""How often a run writes its counters and heartbeat with a page: often enough for
`GET …/runs` to show progress, not a statement on every page of a fast partner."""
REPLAY_BATCH = 500


class AlreadyRunning(DomainError):
    code = "RUN_IN_PROGRESS"
    status = 409


@dataclass(frozen=True, slots=True)
class Progress:
    pages: int
    created: int
    skipped: int
    rejected: int


@dataclass(frozen=True, slots=True)
class RunResult:
    connector_id: str
    run_id: uuid.UUID
    status: str
    pages: int
    created: int
    skipped: int
    rejected: int
    watermark: datetime | None
    error_class: str | None = None
    message: str | None = None
    transient: bool = False
    warnings: int = 0

    def summary(self) -> str:
        """SPEC §4's one line."""
        mark = format_instant(self.watermark) if self.watermark is not None else "none"
        return (
            f"pulled {self.connector_id}: pages={self.pages} created={self.created}"
            f" skipped={self.skipped} rejected={self.rejected} watermark={mark}"
        )

    @classmethod
    def of(cls, run: ConnectorRun, *, transient: bool = False) -> RunResult:
        return cls(
            connector_id=run.connector_id,
            run_id=run.id,
            status=run.status,
            pages=run.pages,
            created=run.created,
            skipped=run.skipped,
            rejected=run.rejected,
            watermark=run.watermark,
            error_class=run.error_class,
            message=run.message,
            transient=transient,
            warnings=run.warnings,
        )


@dataclass(slots=True)
class ReplayResult:
    replayed: int = 0
    created: int = 0
    resolved: int = 0
    still_rejected: int = 0


@dataclass(slots=True)
class _Counts:
    pages: int = 0
    created: int = 0
    skipped: int = 0
    rejected: int = 0
    newest: dict[str, datetime] = field(default_factory=dict)
    """Per collection, the latest partner timestamp of the pages committed so far."""
    warnings: Counter[str] = field(default_factory=Counter)

    def add(self, collection: str, taken: Taken) -> None:
        self.pages += 1
        self.created += taken.created
        self.skipped += taken.skipped
        self.rejected += len(taken.rejected)
        self.warnings = self.warnings + taken.warnings
        seen = self.newest.get(collection)
        if taken.newest is not None and (seen is None or taken.newest > seen):
            self.newest = {**self.newest, collection: taken.newest}

    def take(self, other: _Counts) -> None:
        self.pages, self.created, self.skipped, self.rejected, self.newest, self.warnings = (
            other.pages,
            other.created,
            other.skipped,
            other.rejected,
            other.newest,
            other.warnings,
        )

    def notes(self) -> str | None:
        """What was taken with something left out, as a run's message says it."""
        if not self.warnings:
            return None
        return "; ".join(f"{what}: {n}" for what, n in sorted(self.warnings.items()))

    def progress(self) -> Progress:
        return Progress(self.pages, self.created, self.skipped, self.rejected)


async def fetched_ahead(pages: AsyncIterator[T]) -> AsyncIterator[T]:
    """Each page while the next is being fetched: the partner's latency hides behind the
    commit of the page before, and memory holds two pages at most. A failure to fetch
    the next page surfaces once the current one is committed."""
    iterator = aiter(pages)
    upcoming: asyncio.Future[T | None] = asyncio.ensure_future(anext(iterator, None))
    try:
        while (page := await upcoming) is not None:
            upcoming = asyncio.ensure_future(anext(iterator, None))
            yield page
    finally:
        # The consumer stopped early (a failure while writing): drop the fetch under way,
        # or take note of its outcome so that it is not reported as never retrieved.
        if not upcoming.done():
            upcoming.cancel()
        elif not upcoming.cancelled():
            upcoming.exception()


async def record_start(
    repo: ConnectorRepository,
    connector: Connector,
    run_id: uuid.UUID,
    *,
    trigger: str,
    since: datetime | None,
    dry_run: bool,
    now: datetime,
) -> None:
    """Record a run as `running` in the repository's transaction, which takes the
    connector's lock once it commits; AlreadyRunning if another run holds it (one whose
    heartbeat is older than RUN_STALE_AFTER is marked abandoned first)."""
    tenant_id, connector_id = connector.tenant_id, connector.id
    await repo.abandon_stale(tenant_id, connector_id, now - RUN_STALE_AFTER, now)
    started = await repo.start_run(
        {
            "tenant_id": tenant_id,
            "id": run_id,
            "connector_id": connector_id,
            "trigger": trigger,
            "status": "running",
            "since": since,
            "dry_run": dry_run,
            "started_at": now,
            "heartbeat_at": now,
            "ended_at": None,
            "pages": 0,
            "created": 0,
            "skipped": 0,
            "rejected": 0,
            "warnings": 0,
            "watermark": connector.watermark,
            "error_class": None,
            "message": None,
        }
    )
    if not started:
        raise AlreadyRunning(f"connector {connector_id} is running already")


def source_for(kind: str, config: dict[str, Any]) -> Source:
    if kind == "datapass":
        return DataPassSource(DatapassConfig.model_validate(config))
    if kind == "oneroster":
        return OneRosterSource(OneRosterConfig.model_validate(config))
    raise PermanentPartnerError("unsupported_kind", f"connectors of kind {kind} cannot run")


class Runner:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        stores: SecretStores,
        adapters: Adapters,
        *,
        allow_private: bool,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.stores = stores
        self.adapters = adapters
        self.allow_private = allow_private
        self.policy = policy
        self.sleep = sleep
        self.progress = progress

    async def run(
        self,
        tenant_id: str,
        connector_id: str,
        *,
        trigger: str,
        since: datetime | None = None,
        dry_run: bool = False,
        run_id: uuid.UUID | None = None,
    ) -> RunResult:
        """Raises NotFound, or AlreadyRunning before anything is read. `run_id` lets a
        recovered scheduled run take over its own earlier attempt (or return its result
        if that finished)."""
        started = await self._start(tenant_id, connector_id, trigger, since, dry_run, run_id)
        if isinstance(started, RunResult):
            return started
        run_id, kind, config, stored = started
        counts = _Counts()
        try:
            return await self._pull(
                tenant_id,
                connector_id,
                run_id,
                kind,
                config,
                since,
                stored,
                dry_run,
                counts,
            )
        except PartnerError as exc:
            return await self._fail(tenant_id, connector_id, run_id, counts, exc)
        except BaseException:
            # Best effort: free the connector now rather than when the heartbeat goes stale.
            with contextlib.suppress(Exception):
                await self._fail(
                    tenant_id,
                    connector_id,
                    run_id,
                    counts,
                    PermanentPartnerError("internal", "the run stopped on an unexpected error"),
                    emit=False,
                )
            raise

    async def _start(
        self,
        tenant_id: str,
        connector_id: str,
        trigger: str,
        since: datetime | None,
        dry_run: bool,
        run_id: uuid.UUID | None,
    ) -> RunResult | tuple[uuid.UUID, str, dict[str, Any], dict[str, datetime]]:
        now = self.clock.now()
        async with self.database.transaction() as session:
            repo = ConnectorRepository(session)
            connector = await repo.get(tenant_id, connector_id)
            if connector is None:
                raise NotFound()
            found = await repo.get_run(tenant_id, run_id) if run_id is not None else None
            if found is not None and found.status != "running":
                return RunResult.of(found)
            if found is not None:
                await repo.update_run(tenant_id, found.id, {"heartbeat_at": now})
            else:
                run_id = run_id or uuid7()
                await record_start(
                    repo, connector, run_id, trigger=trigger, since=since, dry_run=dry_run, now=now
                )
            assert run_id is not None
            return run_id, connector.kind, dict(connector.config), stored_watermarks(connector)

    async def _pull(
        self,
        tenant_id: str,
        connector_id: str,
        run_id: uuid.UUID,
        kind: str,
        config: dict[str, Any],
        since: datetime | None,
        stored: dict[str, datetime],
        dry_run: bool,
        counts: _Counts,
    ) -> RunResult:
        source = source_for(kind, config)
        try:
            secret = self.stores.resolve(config["client_secret_ref"])
        except SecretUnavailable:
            raise PermanentPartnerError(
                "secret_unavailable", "the client secret reference does not resolve"
            ) from None
        marks = {c: since if since is not None else stored.get(c) for c in source.collections}
        client = PartnerClient(
            token_url=source.token_url,
            scope=source.scope,
            client_id=config["client_id"],
            client_secret=secret,
            allow_private=self.allow_private,
            policy=self.policy,
            sleep=self.sleep,
        )
        written_at = self.clock.now()
        dry_hold: Held | None = None
        async with client, self._rolled_back(dry_run) as dry:
            async for page in fetched_ahead(source.pages(client, marks)):
                grown = replace(counts)
                if dry is not None:
                    taken = await self._write(
                        dry, source, tenant_id, connector_id, run_id, page, marks, inert=True
                    )
                    grown.add(page.collection, taken)
                else:
                    async with self.database.transaction() as session:
                        taken = await self._write(
                            session, source, tenant_id, connector_id, run_id, page, marks
                        )
                        grown.add(page.collection, taken)
                        if self.clock.now() - written_at >= HEARTBEAT_EVERY:
                            written_at = self.clock.now()
                            await ConnectorRepository(session).update_run(
                                tenant_id, run_id, self._counters(grown)
                            )
                counts.take(grown)  # only what committed counts
                if self.progress is not None:
                    self.progress(counts.progress())
            if dry is not None:
                # What a real run would hold shows in the dry run's message.
                dry_hold = await source.settle(
                    self._context(dry, tenant_id, connector_id, inert=True, run_id=run_id),
                    force=False,
                )
        now = self.clock.now()
        async with self.database.transaction() as session:
            repo = ConnectorRepository(session)
            held = (
                dry_hold
                if dry_run
                else await source.settle(
                    self._context(session, tenant_id, connector_id, run_id=run_id), force=False
                )
            )
            if not dry_run and since is None and counts.newest:
                await repo.advance_watermarks(tenant_id, connector_id, counts.newest, now)
            connector = await repo.get(tenant_id, connector_id)
            watermark_after = connector.watermark if connector is not None else None
            notes = [n for n in (held and f"held: {held.reason}", counts.notes()) if n]
            await repo.update_run(
                tenant_id,
                run_id,
                {
                    **self._counters(counts),
                    "status": HELD if held is not None and not dry_run else "succeeded",
                    "ended_at": now,
                    "watermark": watermark_after,
                    "message": "; ".join(notes) or None,
                },
            )
            if held is not None and not dry_run:
                await record_events(
                    session, tenant_id, [held_event(connector_id, run_id, held)], now
                )
            run = await repo.get_run(tenant_id, run_id)
        assert run is not None
        return RunResult.of(run)

    async def _write(
        self,
        session: AsyncSession,
        source: Source,
        tenant_id: str,
        connector_id: str,
        run_id: uuid.UUID,
        page: Page,
        marks: Mapping[str, datetime | None],
        *,
        inert: bool = False,
    ) -> Taken:
        """The page and its rejects; `inert` adapters for a dry run."""
        context = self._context(session, tenant_id, connector_id, inert=inert, run_id=run_id)
        taken = await source.take(context, page, marks.get(page.collection))
        fresh = await ConnectorRepository(session).record_rejects(
            tenant_id,
            connector_id,
            [
                {
                    "tenant_id": tenant_id,
                    "id": uuid7(),
                    "connector_id": connector_id,
                    "run_id": run_id,
                    "collection": page.collection,
                    "external_id": reject.external_id,
                    "reason": reject.reason,
                    "raw": reject.raw,
                    "digest": reject_digest(page.collection, reject.raw),
                    "created_at": context.now,
                    "replayed_at": None,
                    "resolved_at": None,
                }
                for reject in taken.rejected
            ],
        )
        # An entry rejected again, unchanged, was told of already.
        await record_events(
            session,
            tenant_id,
            [rejected_event(connector_id, row["external_id"], row["reason"]) for row in fresh],
            context.now,
        )
        return taken

    @contextlib.asynccontextmanager
    async def _rolled_back(self, dry_run: bool) -> AsyncIterator[AsyncSession | None]:
        """For a dry run, one transaction for every page, rolled back at the end, so that
        a page sees what the pages before it would have written (a roster's enrollments
        find the people its users page made) and its counts are what a real run would
        make. It writes no heartbeat: the run's row cannot move in a transaction that
        is thrown away. None for a real run, whose pages commit one by one."""
        if not dry_run:
            yield None
            return
        async with self.database.sessions() as session:
            transaction = await session.begin()
            try:
                yield session
            finally:
                await transaction.rollback()

    def _context(
        self,
        session: AsyncSession,
        tenant_id: str,
        connector_id: str,
        *,
        inert: bool = False,
        run_id: uuid.UUID | None = None,
    ) -> Context:
        return Context(
            session=session,
            tenant_id=tenant_id,
            connector_id=connector_id,
            clock=self.clock,
            adapters=Adapters.inert() if inert else self.adapters,
            now=self.clock.now(),
            run_id=run_id,
        )

    async def replay_rejects(self, tenant_id: str, connector_id: str) -> ReplayResult:
        """Take every open reject again as a first run would (no watermark: an operator
        replaying an undated entry vouches for it), each in a savepoint of its own so
        that one still refused leaves nothing behind. Taken ones are resolved; the rest
        stay open with the time of this attempt."""
        result = ReplayResult()
        after: uuid.UUID | None = None
        while True:
            async with self.database.transaction() as session:
                repo = ConnectorRepository(session)
                connector = await repo.get(tenant_id, connector_id)
                if connector is None:
                    raise NotFound()
                source = source_for(connector.kind, dict(connector.config))
                rejects = await repo.rejects(
                    tenant_id, connector_id, after=after, limit=REPLAY_BATCH, open_only=True
                )
                if not rejects:
                    return result
                context = self._context(session, tenant_id, connector_id)
                resolved: list[uuid.UUID] = []
                still: list[uuid.UUID] = []
                for reject in rejects:
                    page = Page(reject.collection or source.collections[0], [reject.raw])
                    savepoint = await session.begin_nested()
                    taken = await source.take(context, page, None)
                    if taken.rejected:
                        await savepoint.rollback()
                        still.append(reject.id)
                    else:
                        await savepoint.commit()
                        resolved.append(reject.id)
                        result.created += taken.created
                await repo.mark_replayed(tenant_id, resolved, context.now, resolved=True)
                await repo.mark_replayed(tenant_id, still, context.now, resolved=False)
            result.replayed += len(rejects)
            result.resolved += len(resolved)
            result.still_rejected += len(still)
            after = rejects[-1].id

    async def _fail(
        self,
        tenant_id: str,
        connector_id: str,
        run_id: uuid.UUID,
        counts: _Counts,
        error: PartnerError,
        *,
        emit: bool = True,
    ) -> RunResult:
        now = self.clock.now()
        message = error.message[:MESSAGE_LENGTH]
        log.warning(
            "connector_run_failed",
            tenant=tenant_id,
            connector=connector_id,
            run=str(run_id),
            error_class=error.error_class,
        )
        async with self.database.transaction() as session:
            repo = ConnectorRepository(session)
            await repo.update_run(
                tenant_id,
                run_id,
                {
                    **self._counters(counts),
                    "status": "failed",
                    "ended_at": now,
                    "error_class": error.error_class,
                    "message": message,
                },
            )
            if emit:
                await record_events(
                    session,
                    tenant_id,
                    [
                        NewEvent(
                            "connector.run.failed",
                            {
                                "connector_id": connector_id,
                                "run_id": str(run_id),
                                "error_class": error.error_class,
                                "message": message,
                            },
                        )
                    ],
                    now,
                )
            run = await repo.get_run(tenant_id, run_id)
        assert run is not None
        return RunResult.of(run, transient=error.transient)

    def _counters(self, counts: _Counts) -> dict[str, Any]:
        return {
            "pages": counts.pages,
            "created": counts.created,
            "skipped": counts.skipped,
            "rejected": counts.rejected,
            "warnings": sum(counts.warnings.values()),
            "heartbeat_at": self.clock.now(),
        }


def held_event(connector_id: str, run_id: uuid.UUID, held: Held) -> NewEvent:
    return NewEvent(
        "connector.run.held",
        {
            "connector_id": connector_id,
            "run_id": str(run_id),
            "reason": held.reason,
            "would_cancel": held.would_cancel,
        },
    )


def rejected_event(connector_id: str, external_id: str | None, reason: str) -> NewEvent:
    data: dict[str, Any] = {"connector_id": connector_id, "reason": reason}
    if external_id is not None:
        data["external_id"] = external_id
    return NewEvent("connector.entry.rejected", data)


def reject_digest(collection: str, raw: Any) -> str:
    """One record in one version: the collection and the entry as received, canonically."""
    text = json.dumps(
        {"collection": collection, "raw": raw},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()
