"""Learning time on `completion.recorded` payloads: optional, bounded, never in the way.

An endpoint that opts in (see `flags`) receives `learning_time`, the seconds
the person spent on the course, next to the completion. The number comes from
a `LearningTimeSource`: our own completions by default, or a query on a
warehouse. The caller computes it once per message, at its first attempt, and
stores it with the message, so retries resend the same payload.

A slow or broken source must not hold deliveries back: each lookup has a
deadline, and on any failure the payload simply goes without the field and the
`failure` count of `coursegate_enrichment_total` says so. A TTL cache spares
the source the bursts of one person's completions going to several endpoints.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

import structlog
from prometheus_client import Counter
from sqlalchemy import Engine, TextClause, create_engine, func, select, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncSession

from coursegate.config import Settings
from coursegate.db import Database
from coursegate.kit.clock import Clock
from coursegate.models import Completion
from coursegate.webhooks.flags import LEARNING_TIME, EnrichmentFlags

log = structlog.get_logger(__name__)

COMPLETION_RECORDED = "completion.recorded"
SECONDS_PER_HOUR = 3600

ENRICHMENT_LOOKUPS = Counter(
    "coursegate_enrichment_total",
    "Learning-time enrichments by result: hit (cache), miss (source), failure (field omitted)",
    ["result"],
)
for _result in ("hit", "miss", "failure"):
    ENRICHMENT_LOOKUPS.labels(result=_result)  # export zeros from the start


class LearningTimeSource(Protocol):
    async def seconds(self, tenant_id: str, data: Mapping[str, Any]) -> int | None:
        """Seconds of learning behind a `completion.recorded` payload; None when nothing is known."""
        ...


def whole_seconds(value: Decimal) -> int:
    """Exact seconds rounded half up; a negative or non-finite amount is the source's error."""
    if not value.is_finite():
        raise ValueError(f"learning time is not a finite number: {value}")
    if value < 0:
        raise ValueError(f"learning time is negative: {value}")
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True, slots=True)
class CourseKey:
    """Whose completion of which course: what a lookup (and the cache) is keyed by."""

    tenant_id: str
    program_id: str
    person_id: str
    provider_id: str
    course_id: str

    @classmethod
    def of(cls, tenant_id: str, data: Mapping[str, Any]) -> CourseKey:
        return cls(
            tenant_id=tenant_id,
            program_id=str(data["program_id"]),
            person_id=str(data["person"]["id"]),
            provider_id=str(data["provider_id"]),
            course_id=str(data["course_id"]),
        )


# --- The system's own records ---------------------------------------------------------------


async def recorded_hours(session: AsyncSession, key: CourseKey) -> Decimal | None:
    """Hours recorded for the person's completions of the course; None when there are none."""
    hours: Decimal | None = await session.scalar(
        select(func.sum(Completion.content_hours)).where(
            Completion.tenant_id == key.tenant_id,
            Completion.program_id == key.program_id,
            Completion.person_id == uuid.UUID(key.person_id),
            Completion.provider_id == key.provider_id,
            Completion.course_id == key.course_id,
        )
    )
    return hours


class RecordsSource:
    """The default: the content hours of the completions we recorded, in seconds."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def seconds(self, tenant_id: str, data: Mapping[str, Any]) -> int | None:
        key = CourseKey.of(tenant_id, data)
        async with self._database.transaction() as session:
            hours = await recorded_hours(session, key)
        return None if hours is None else whole_seconds(hours * SECONDS_PER_HOUR)

    def dispose(self) -> None:
        """Nothing to release: the database belongs to the application."""


# --- A warehouse query ------------------------------------------------------------------------

SQL_BIND_NAMES = frozenset(
    {
        "tenant_id",
        "completion_id",
        "program_id",
        "provider_id",
        "course_id",
        "person_id",
        "person_namespace",
        "person_identifier",
    }
)
SQL_WORKERS = 4


def _bind_values(tenant_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
    person = data["person"]
    identifiers = person.get("identifiers") or []
    first = identifiers[0] if identifiers else {}
    return {
        "tenant_id": tenant_id,
        "completion_id": data.get("completion_id"),
        "program_id": data["program_id"],
        "provider_id": data["provider_id"],
        "course_id": data["course_id"],
        "person_id": person["id"],
        "person_namespace": first.get("namespace"),
        "person_identifier": first.get("value"),
    }


def _to_seconds(value: Any) -> int | None:
    """The first column of the query's answer, in whole seconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("learning-time query returned a boolean, not seconds")
    if isinstance(value, timedelta):
        return whole_seconds(Decimal(value // timedelta(microseconds=1)) / 1_000_000)
    if isinstance(value, int):
        return whole_seconds(Decimal(value))
    if isinstance(value, Decimal):
        return whole_seconds(value)
    if isinstance(value, float):
        return whole_seconds(Decimal(repr(value)))
    raise TypeError(f"learning-time query returned {type(value).__name__}, not seconds")


class SqlSource:
    """A configured, parameterised query on any database SQLAlchemy reaches (a warehouse).

    Warehouse drivers are often synchronous only, so the query runs on a sync
    engine in worker threads of its own: a hung warehouse then ties up those
    few threads and nothing else (the default executor also resolves the DNS
    names of webhook targets). The query names the values it needs as binds,
    e.g. `... WHERE learner = :person_identifier AND course = :course_id`; any
    other name is refused here, at start-up, not at the first delivery.
    """

    def __init__(self, url: str, query: str) -> None:
        if not query.strip():
            raise ValueError("the learning-time SQL query is empty")
        self._statement: TextClause = text(query)
        names = frozenset(self._statement.compile().params)
        unknown = sorted(names - SQL_BIND_NAMES)
        if unknown:
            raise ValueError(
                "the learning-time SQL query uses unknown bind parameter(s) "
                + ", ".join(f":{n}" for n in unknown)
                + "; known: "
                + ", ".join(f":{n}" for n in sorted(SQL_BIND_NAMES))
            )
        self._names = names
        try:
            # Parameters stay out of error messages: they identify people.
            self._engine: Engine = create_engine(
                url, pool_pre_ping=True, pool_recycle=1800, hide_parameters=True
            )
        except (NoSuchModuleError, ImportError) as exc:
            raise ValueError(f"the learning-time SQL URL needs a driver: {exc}") from None
        except ArgumentError:
            # Not the message: it would repeat the URL, password and all.
            raise ValueError("the learning-time SQL URL is not a SQLAlchemy URL") from None
        if self._engine.dialect.is_async:
            self._engine.dispose()
            raise ValueError(
                "the learning-time SQL URL names an async driver; give a synchronous one "
                "(e.g. postgresql+psycopg:// rather than postgresql+asyncpg://)"
            )
        self._executor = ThreadPoolExecutor(
            max_workers=SQL_WORKERS, thread_name_prefix="learning-time-sql"
        )

    async def seconds(self, tenant_id: str, data: Mapping[str, Any]) -> int | None:
        values = _bind_values(tenant_id, data)
        params = {name: values[name] for name in self._names}
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._query, params)

    def _query(self, params: dict[str, Any]) -> int | None:
        with self._engine.connect() as conn:
            row = conn.execute(self._statement, params).first()
        return None if row is None else _to_seconds(row[0])

    def dispose(self) -> None:
        """Close the warehouse connections; a query still running finishes on its own."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._engine.dispose()


# --- Cache --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lookup:
    seconds: int | None
    cached: bool


class CachedSource:
    """A TTL cache in front of a source; "nothing known" is cached too, errors are not.

    Bounded: past `max_entries` the entry stored longest ago goes first.
    """

    def __init__(
        self,
        source: LearningTimeSource,
        *,
        clock: Clock,
        ttl_seconds: float,
        max_entries: int = 10_000,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.source = source
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_seconds)
        self._max = max_entries
        self._entries: OrderedDict[CourseKey, tuple[datetime, int | None]] = OrderedDict()

    async def seconds(self, tenant_id: str, data: Mapping[str, Any]) -> int | None:
        return (await self.lookup(tenant_id, data)).seconds

    async def lookup(self, tenant_id: str, data: Mapping[str, Any]) -> Lookup:
        """The value, and whether it came from the cache rather than the source."""
        key = CourseKey.of(tenant_id, data)
        now = self._clock.now()
        entry = self._entries.get(key)
        if entry is not None:
            expires_at, value = entry
            if now < expires_at:
                return Lookup(value, cached=True)
            del self._entries[key]
        value = await self.source.seconds(tenant_id, data)
        self._entries.pop(key, None)
        self._entries[key] = (self._clock.now() + self._ttl, value)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return Lookup(value, cached=False)

    def __len__(self) -> int:
        return len(self._entries)

    def dispose(self) -> None:
        dispose_source(self.source)


def dispose_source(source: LearningTimeSource) -> None:
    """Release what a source holds (a warehouse engine), whichever source it is."""
    dispose = getattr(source, "dispose", None)
    if callable(dispose):
        dispose()


# --- Enricher -----------------------------------------------------------------------------------


class Enricher:
    """The fields to add to one message's payload for one endpoint; never raises."""

    def __init__(
        self, source: LearningTimeSource, flags: EnrichmentFlags, *, timeout_seconds: float
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self._source = source
        self._flags = flags
        self._timeout = timeout_seconds

    async def extra_fields(
        self,
        tenant_id: str,
        endpoint_id: str,
        enrichments: Mapping[str, Any],
        event_type: str,
        data: Mapping[str, Any],
    ) -> dict[str, Any]:
        if not self.wants(tenant_id, endpoint_id, enrichments, event_type):
            return {}
        return await self.fields(tenant_id, endpoint_id, data)

    def wants(
        self, tenant_id: str, endpoint_id: str, enrichments: Mapping[str, Any], event_type: str
    ) -> bool:
        """Whether this message gets looked up at all; cheap, so callers ask before
        decoding a payload."""
        if event_type != COMPLETION_RECORDED:
            return False
        try:
            return self._flags.enabled(LEARNING_TIME, endpoint_id, enrichments)
        except Exception as exc:
            log.warning(
                "enrichment_flag_failed",
                flag=LEARNING_TIME,
                tenant_id=tenant_id,
                endpoint_id=endpoint_id,
                error_class=type(exc).__name__,
            )
            return False

    async def fields(
        self, tenant_id: str, endpoint_id: str, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The looked-up fields of a message that `wants` them; never raises."""
        try:
            async with asyncio.timeout(self._timeout):
                lookup = await self._lookup(tenant_id, data)
        except Exception as exc:  # the delivery goes without the field, whatever went wrong
            ENRICHMENT_LOOKUPS.labels(result="failure").inc()
            log.warning(
                "learning_time_enrichment_failed",
                tenant_id=tenant_id,
                endpoint_id=endpoint_id,
                error_class=type(exc).__name__,
                timeout=isinstance(exc, TimeoutError),
            )
            return {}
        ENRICHMENT_LOOKUPS.labels(result="hit" if lookup.cached else "miss").inc()
        if lookup.seconds is None:
            return {}
        return {LEARNING_TIME: lookup.seconds}

    async def _lookup(self, tenant_id: str, data: Mapping[str, Any]) -> Lookup:
        if isinstance(self._source, CachedSource):
            return await self._source.lookup(tenant_id, data)
        return Lookup(await self._source.seconds(tenant_id, data), cached=False)


def build_source(settings: Settings, database: Database, clock: Clock) -> LearningTimeSource:
    """The source the settings name, behind the cache unless its TTL is zero."""
    source: LearningTimeSource
    if settings.learning_time_source == "sql":
        url = settings.learning_time_sql_url
        query = settings.learning_time_sql_query
        if url is None or not url.get_secret_value().strip() or not query or not query.strip():
            raise ValueError(
                "COURSEGATE_LEARNING_TIME_SOURCE=sql needs both COURSEGATE_LEARNING_TIME_SQL_URL "
                "and COURSEGATE_LEARNING_TIME_SQL_QUERY"
            )
        source = SqlSource(url.get_secret_value(), query)
    else:
        source = RecordsSource(database)
    if settings.learning_time_cache_seconds > 0:
        return CachedSource(source, clock=clock, ttl_seconds=settings.learning_time_cache_seconds)
    return source
