"""One run of a connector: the run lock, page after page committed, the watermark last.

The order of commits is the whole design (SPEC §4):

1. the run is recorded as `running`, which takes the connector's lock (a
   partial unique index: a second run of the same connector is refused, and a
   run whose process died stops holding it once its heartbeat is an hour old);
2. each page is written in its own transaction as it arrives (the next one is
   fetched meanwhile), authorizations by insert-or-ignore on their external id
   and rejects with their raw entry, and every two seconds the run's counters
   and heartbeat move with a page, so memory holds two pages and a crash loses
   nothing committed;
3. only after the last page, in the run's last transaction, the watermark
   moves, and only forward: a run that fails anywhere leaves it untouched, and
   the re-run finds its earlier pages already written and creates nothing twice.

`--since` and `--dry-run` runs read from another point or write nothing, so
they never move the watermark. A run that fails for good (the client has
already retried what was transient) is recorded with its error class and
emits `connector.run.failed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.connectors.datapass import DataPassSource, NewAuthorization, Sorted
from coursegate.connectors.http import (
    PartnerClient,
    PartnerError,
    PermanentPartnerError,
    RetryPolicy,
    Sleep,
)
from coursegate.connectors.repository import ConnectorRepository
from coursegate.connectors.schemas import DatapassConfig
from coursegate.db import Database
from coursegate.events.outbox import NewEvent, record_events
from coursegate.kit.clock import Clock
from coursegate.kit.errors import DomainError, NotFound
from coursegate.kit.ids import uuid7
from coursegate.kit.secrets import SecretStores, SecretUnavailable
from coursegate.kit.timefmt import format_instant
from coursegate.models import ConnectorRun

log = structlog.get_logger(__name__)

T = TypeVar("T")

RUN_STALE_AFTER = timedelta(hours=1)
"""Longer than the worst page: five tries with 30 s timeouts and capped backoff or
`Retry-After` waits. A run silent for longer than this died with its process."""
MESSAGE_LENGTH = 512
HEARTBEAT_EVERY = timedelta(seconds=2)
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
    newest: datetime | None = None

    def add(self, page: Sorted, created: int) -> None:
        self.pages += 1
        self.created += created
        self.skipped += page.skipped + len(page.accepted) - created
        self.rejected += len(page.rejected)
        if page.newest is not None and (self.newest is None or page.newest > self.newest):
            self.newest = page.newest

    def take(self, other: _Counts) -> None:
        self.pages, self.created, self.skipped, self.rejected, self.newest = (
            other.pages,
            other.created,
            other.skipped,
            other.rejected,
            other.newest,
        )

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


def source_for(kind: str, config: dict[str, Any]) -> DataPassSource:
    if kind == "datapass":
        return DataPassSource(DatapassConfig.model_validate(config))
    raise PermanentPartnerError("unsupported_kind", f"connectors of kind {kind} cannot run yet")


class Runner:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        stores: SecretStores,
        *,
        allow_private: bool,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.stores = stores
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
        run_id, kind, config, stored_watermark = started
        counts = _Counts()
        try:
            return await self._pull(
                tenant_id,
                connector_id,
                run_id,
                kind,
                config,
                since,
                stored_watermark,
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
    ) -> RunResult | tuple[uuid.UUID, str, dict[str, Any], datetime | None]:
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
                        "watermark": connector.watermark,
                        "error_class": None,
                        "message": None,
                    }
                )
                if not started:
                    raise AlreadyRunning(f"connector {connector_id} is running already")
            assert run_id is not None
            return run_id, connector.kind, dict(connector.config), connector.watermark

    async def _pull(
        self,
        tenant_id: str,
        connector_id: str,
        run_id: uuid.UUID,
        kind: str,
        config: dict[str, Any],
        since: datetime | None,
        stored_watermark: datetime | None,
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
        watermark = since if since is not None else stored_watermark
        client = PartnerClient(
            token_url=source.token_url,
            client_id=config["client_id"],
            client_secret=secret,
            allow_private=self.allow_private,
            policy=self.policy,
            sleep=self.sleep,
        )
        written_at = self.clock.now()
        async with client:
            async for page in fetched_ahead(source.pages(client)):
                sorted_page = source.sort(page, watermark)
                grown = replace(counts)
                async with self.database.transaction() as session:
                    created = await self._write(
                        session, tenant_id, connector_id, run_id, sorted_page, dry_run
                    )
                    grown.add(sorted_page, created)
                    if self.clock.now() - written_at >= HEARTBEAT_EVERY:
                        written_at = self.clock.now()
                        await ConnectorRepository(session).update_run(
                            tenant_id, run_id, self._counters(grown)
                        )
                counts.take(grown)  # only what committed counts
                if self.progress is not None:
                    self.progress(counts.progress())
        now = self.clock.now()
        async with self.database.transaction() as session:
            repo = ConnectorRepository(session)
            if not dry_run and since is None and counts.newest is not None:
                await repo.advance_watermark(tenant_id, connector_id, counts.newest, now)
            connector = await repo.get(tenant_id, connector_id)
            watermark_after = connector.watermark if connector is not None else None
            await repo.update_run(
                tenant_id,
                run_id,
                {
                    **self._counters(counts),
                    "status": "succeeded",
                    "ended_at": now,
                    "watermark": watermark_after,
                },
            )
            run = await repo.get_run(tenant_id, run_id)
        assert run is not None
        return RunResult.of(run)

    async def _write(
        self,
        session: AsyncSession,
        tenant_id: str,
        connector_id: str,
        run_id: uuid.UUID,
        page: Sorted,
        dry_run: bool,
    ) -> int:
        """How many authorizations the page created (or would have, on a dry run)."""
        if dry_run:
            wanted = {entry.external_id for entry in page.accepted}
            repo = ConnectorRepository(session)
            return len(wanted - await repo.existing_external_ids(tenant_id, connector_id, wanted))
        now = self.clock.now()
        created, events = await create_authorizations(
            session, tenant_id, connector_id, page.accepted, now
        )
        await ConnectorRepository(session).add_rejects(
            [
                {
                    "tenant_id": tenant_id,
                    "id": uuid7(),
                    "connector_id": connector_id,
                    "run_id": run_id,
                    "external_id": reject.external_id,
                    "reason": reject.reason,
                    "raw": reject.raw,
                    "created_at": now,
                    "replayed_at": None,
                    "resolved_at": None,
                }
                for reject in page.rejected
            ]
        )
        events += [rejected_event(connector_id, r.external_id, r.reason) for r in page.rejected]
        await record_events(session, tenant_id, events, now)
        return created

    async def replay_rejects(self, tenant_id: str, connector_id: str) -> ReplayResult:
        """Sort every open reject again as a first run would (no watermark: an operator
        replaying an undated entry vouches for it). Taken ones are resolved; the rest
        stay open with the time of this attempt."""
        result = ReplayResult()
        after: uuid.UUID | None = None
        while True:
            now = self.clock.now()
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
                resolved: list[uuid.UUID] = []
                still: list[uuid.UUID] = []
                accepted: list[NewAuthorization] = []
                for reject in rejects:
                    page = source.sort([reject.raw], None)
                    (still if page.rejected else resolved).append(reject.id)
                    accepted += page.accepted
                created, events = await create_authorizations(
                    session, tenant_id, connector_id, accepted, now
                )
                await record_events(session, tenant_id, events, now)
                await repo.mark_replayed(tenant_id, resolved, now, resolved=True)
                await repo.mark_replayed(tenant_id, still, now, resolved=False)
            result.replayed += len(rejects)
            result.created += created
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
            "heartbeat_at": self.clock.now(),
        }


async def create_authorizations(
    session: AsyncSession,
    tenant_id: str,
    connector_id: str,
    accepted: Sequence[NewAuthorization],
    now: datetime,
) -> tuple[int, list[NewEvent]]:
    """Insert-or-ignore on the external id (the first of a page's duplicates wins); how
    many were new, and an `authorization.validated` event for each of them."""
    first: dict[str, NewAuthorization] = {}
    for entry in accepted:
        first.setdefault(entry.external_id, entry)
    rows = [
        {
            "tenant_id": tenant_id,
            "id": uuid7(),
            "connector_id": connector_id,
            "external_id": entry.external_id,
            "type": entry.type,
            "validated_at": entry.validated_at,
            "organisation": entry.organisation,
            "data": entry.data,
            "created_at": now,
        }
        for entry in first.values()
    ]
    created = await ConnectorRepository(session).insert_authorizations(rows)
    events = [
        NewEvent(
            "authorization.validated",
            {
                "authorization_id": str(row["id"]),
                "connector_id": connector_id,
                "external_id": row["external_id"],
                "type": row["type"],
                "validated_at": (
                    format_instant(row["validated_at"]) if row["validated_at"] else None
                ),
                "organisation": row["organisation"],
                "data": row["data"],
            },
        )
        for row in rows
        if row["external_id"] in created
    ]
    return len(created), events


def rejected_event(connector_id: str, external_id: str | None, reason: str) -> NewEvent:
    data: dict[str, Any] = {"connector_id": connector_id, "reason": reason}
    if external_id is not None:
        data["external_id"] = external_id
    return NewEvent("connector.entry.rejected", data)
