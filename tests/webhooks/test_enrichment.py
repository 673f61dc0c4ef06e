"""Learning time on completion.recorded: per-endpoint flags, sources, cache and the enricher."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, text

from coursegate.config import Settings, sync_database_url
from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.kit.ids import uuid7
from coursegate.models import Completion, Person, PersonIdentifier, Program, Provider
from coursegate.webhooks.enrichment import (
    CachedSource,
    Enricher,
    RecordsSource,
    SqlSource,
    build_source,
)
from coursegate.webhooks.flags import LEARNING_TIME, EnrichmentFlags, rollout_bucket

TENANT = "acme"
PROGRAM = "co-earned-time"
PROVIDER = "edovo"
COURSE = "fin-lit-101"
ON = {LEARNING_TIME: {"enabled": True, "rollout_percent": 100}}


def completion_data(
    person_id: str | uuid.UUID,
    *,
    course_id: str = COURSE,
    identifier: str = "123456",
) -> dict[str, Any]:
    """A completion.recorded payload as the outbox stores it."""
    return {
        "completion_id": str(uuid7()),
        "program_id": PROGRAM,
        "provider_id": PROVIDER,
        "person": {
            "id": str(person_id),
            "identifiers": [{"namespace": "us_co_doc_id", "value": identifier}],
        },
        "course_id": course_id,
        "course_name": "Financial Literacy",
        "content_hours": "1.50",
        "completed_at": "2026-06-10T05:19:00.000Z",
    }


def enrichment_count(result: str) -> float:
    return REGISTRY.get_sample_value("coursegate_enrichment_total", {"result": result}) or 0.0


class CountingSource:
    """Answers a fixed value and counts how often it was asked."""

    def __init__(self, value: int | None) -> None:
        self.value = value
        self.calls = 0

    async def seconds(self, tenant_id: str, data: Mapping[str, Any]) -> int | None:
        self.calls += 1
        return self.value


class FailingSource:
    async def seconds(self, tenant_id: str, data: Mapping[str, Any]) -> int | None:
        raise ConnectionError("warehouse unreachable")


class SlowSource:
    async def seconds(self, tenant_id: str, data: Mapping[str, Any]) -> int | None:
        await asyncio.sleep(5)
        return 60


# --- flags --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flags() -> EnrichmentFlags:
    return EnrichmentFlags()


def endpoint_ids(count: int) -> list[str]:
    rng = random.Random(2026)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def at_percent(percent: int) -> dict[str, Any]:
    return {LEARNING_TIME: {"enabled": True, "rollout_percent": percent}}


@pytest.mark.parametrize(
    "enrichments",
    [
        {},
        {LEARNING_TIME: {}},
        {LEARNING_TIME: {"enabled": False, "rollout_percent": 100}},
        {LEARNING_TIME: {"enabled": "true"}},
        {"other": {"enabled": True}},
    ],
)
def test_a_flag_is_off_unless_enabled(flags: EnrichmentFlags, enrichments: dict[str, Any]) -> None:
    assert not any(flags.enabled(LEARNING_TIME, e, enrichments) for e in endpoint_ids(50))


def test_enabled_with_the_full_rollout_or_no_percentage_is_on_everywhere(
    flags: EnrichmentFlags,
) -> None:
    ids = endpoint_ids(200)
    assert all(flags.enabled(LEARNING_TIME, e, at_percent(100)) for e in ids)
    assert all(flags.enabled(LEARNING_TIME, e, {LEARNING_TIME: {"enabled": True}}) for e in ids)


def test_enabled_at_zero_percent_is_off_everywhere(flags: EnrichmentFlags) -> None:
    assert not any(flags.enabled(LEARNING_TIME, e, at_percent(0)) for e in endpoint_ids(500))


@pytest.mark.parametrize("percent", [-1, 101, "50", True, None])
def test_a_malformed_percentage_is_off(flags: EnrichmentFlags, percent: Any) -> None:
    config = {LEARNING_TIME: {"enabled": True, "rollout_percent": percent}}
    assert not any(flags.enabled(LEARNING_TIME, e, config) for e in endpoint_ids(50))


def test_a_quarter_rollout_reaches_about_a_quarter_of_endpoints(flags: EnrichmentFlags) -> None:
    ids = endpoint_ids(2000)
    on = sum(flags.enabled(LEARNING_TIME, e, at_percent(25)) for e in ids)
    assert 0.20 * len(ids) <= on <= 0.30 * len(ids)


def test_raising_the_rollout_only_adds_endpoints(flags: EnrichmentFlags) -> None:
    ids = endpoint_ids(2000)
    quarter = {e for e in ids if flags.enabled(LEARNING_TIME, e, at_percent(25))}
    half = {e for e in ids if flags.enabled(LEARNING_TIME, e, at_percent(50))}
    assert quarter < half


def test_an_endpoint_gets_the_same_answer_every_time(flags: EnrichmentFlags) -> None:
    ids = endpoint_ids(300)
    first = [flags.enabled(LEARNING_TIME, e, at_percent(40)) for e in ids]
    again = [flags.enabled(LEARNING_TIME, e, at_percent(40)) for e in ids]
    other_instance = EnrichmentFlags()
    third = [other_instance.enabled(LEARNING_TIME, e, at_percent(40)) for e in ids]
    assert first == again == third
    assert [rollout_bucket(LEARNING_TIME, e) < 40 for e in ids] == first


def test_buckets_differ_per_flag() -> None:
    ids = endpoint_ids(100)
    assert [rollout_bucket("a", e) for e in ids] != [rollout_bucket("b", e) for e in ids]
    assert all(0 <= rollout_bucket(LEARNING_TIME, e) < 100 for e in ids)


# --- records source -------------------------------------------------------------------------


async def seed_completion(
    database: Database, clock: FrozenClock, hours: Decimal, *, course_id: str = COURSE
) -> uuid.UUID:
    """A program, a provider, a person and one recorded completion; returns the person's id."""
    now = clock.now()
    person_id = uuid7()
    async with database.transaction() as session:
        session.add(
            Program(
                tenant_id=TENANT,
                id=PROGRAM,
                name="Colorado earned time",
                jurisdiction="US_CO",
                hours_per_credit=Decimal(6),
                identifier_namespace="us_co_doc_id",
                created_at=now,
            )
        )
        session.add(Person(tenant_id=TENANT, id=person_id, created_at=now))
        await session.flush()
        session.add(
            PersonIdentifier(
                tenant_id=TENANT,
                namespace="us_co_doc_id",
                value="123456",
                person_id=person_id,
                created_at=now,
            )
        )
        session.add(
            Provider(
                tenant_id=TENANT,
                id=PROVIDER,
                program_id=PROGRAM,
                scheme="hmac-authorization",
                created_at=now,
            )
        )
        await session.flush()
        session.add(
            Completion(
                tenant_id=TENANT,
                id=uuid7(),
                program_id=PROGRAM,
                person_id=person_id,
                provider_id=PROVIDER,
                course_id=course_id,
                course_name="Financial Literacy",
                content_hours=hours,
                completed_at=now - timedelta(hours=2),
                recorded_at=now,
                content_digest="0" * 64,
            )
        )
    return person_id


async def test_records_source_answers_recorded_hours_in_seconds(
    database: Database, clock: FrozenClock, acme: str
) -> None:
    person_id = await seed_completion(database, clock, Decimal("1.50"))
    source = RecordsSource(database)

    assert await source.seconds(TENANT, completion_data(person_id)) == 5400


async def test_records_source_knows_nothing_of_other_people_courses_or_tenants(
    database: Database, clock: FrozenClock, acme: str
) -> None:
    person_id = await seed_completion(database, clock, Decimal("1.50"))
    source = RecordsSource(database)

    assert await source.seconds(TENANT, completion_data(uuid7())) is None
    assert await source.seconds(TENANT, completion_data(person_id, course_id="other")) is None
    assert await source.seconds("globex", completion_data(person_id)) is None


# --- SQL source -----------------------------------------------------------------------------

WAREHOUSE_QUERY = (
    "SELECT seconds FROM learning_time WHERE learner = :person_identifier AND course = :course_id"
)


def create_warehouse(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("CREATE TABLE learning_time (learner TEXT, course TEXT, seconds NUMERIC)")
            )
            conn.execute(
                text(
                    "INSERT INTO learning_time VALUES "
                    "('123456', 'fin-lit-101', 5399.5), ('123456', 'blank', NULL), "
                    "('777', 'fin-lit-101', 60)"
                )
            )
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_warehouse(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    create_warehouse(url)
    return url


@pytest.fixture
def sql_source(sqlite_warehouse: str) -> Iterator[SqlSource]:
    source = SqlSource(sqlite_warehouse, WAREHOUSE_QUERY)
    yield source
    source.dispose()


async def test_sql_source_runs_the_configured_query(sql_source: SqlSource) -> None:
    person = uuid7()
    assert await sql_source.seconds(TENANT, completion_data(person)) == 5400  # 5399.5 half up
    assert await sql_source.seconds(TENANT, completion_data(person, identifier="777")) == 60


async def test_sql_source_answers_none_for_no_row_or_null(sql_source: SqlSource) -> None:
    person = uuid7()
    assert await sql_source.seconds(TENANT, completion_data(person, identifier="nobody")) is None
    assert await sql_source.seconds(TENANT, completion_data(person, course_id="blank")) is None


async def test_sql_source_passes_every_known_value(sqlite_warehouse: str) -> None:
    query = (
        "SELECT 1 WHERE :tenant_id = 'acme' AND :program_id = 'co-earned-time' "
        "AND :provider_id = 'edovo' AND :course_id = 'fin-lit-101' AND :person_id = :expected_person "
        "AND :person_namespace = 'us_co_doc_id' AND :person_identifier = '123456' "
        "AND :completion_id IS NOT NULL"
    )
    with pytest.raises(ValueError, match=":expected_person"):
        SqlSource(sqlite_warehouse, query)
    person = uuid7()
    source = SqlSource(sqlite_warehouse, query.replace(":expected_person", f"'{person}'"))
    try:
        assert await source.seconds(TENANT, completion_data(person)) == 1
    finally:
        source.dispose()


async def test_sql_source_on_each_database(db_url: str) -> None:
    """The same query on the databases we test on: a SQLite file and PostgreSQL via psycopg."""
    url = sync_database_url(db_url)
    create_warehouse(url)
    source = SqlSource(url, WAREHOUSE_QUERY)
    try:
        assert await source.seconds(TENANT, completion_data(uuid7())) == 5400
        assert await source.seconds(TENANT, completion_data(uuid7(), identifier="x")) is None
    finally:
        source.dispose()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT seconds FROM learning_time WHERE learner = :student",
        "SELECT :course_id, :secret_value",
    ],
)
def test_sql_source_refuses_unknown_bind_names(sqlite_warehouse: str, query: str) -> None:
    with pytest.raises(ValueError, match="unknown bind parameter"):
        SqlSource(sqlite_warehouse, query)


def test_sql_source_refuses_an_async_driver_or_an_empty_query(sqlite_warehouse: str) -> None:
    with pytest.raises(ValueError, match="async driver"):
        SqlSource("postgresql+asyncpg://warehouse.invalid/db", WAREHOUSE_QUERY)
    with pytest.raises(ValueError, match="empty"):
        SqlSource(sqlite_warehouse, "   ")


# --- cache ---------------------------------------------------------------------------------


async def test_cache_spares_the_source_within_the_ttl(clock: FrozenClock) -> None:
    source = CountingSource(5400)
    cached = CachedSource(source, clock=clock, ttl_seconds=300)
    data = completion_data(uuid7())

    assert await cached.seconds(TENANT, data) == 5400
    clock.advance(timedelta(seconds=299))
    assert await cached.seconds(TENANT, data) == 5400
    assert source.calls == 1

    clock.advance(timedelta(seconds=2))
    assert await cached.seconds(TENANT, data) == 5400
    assert source.calls == 2


async def test_cache_keeps_nothing_known_too(clock: FrozenClock) -> None:
    source = CountingSource(None)
    cached = CachedSource(source, clock=clock, ttl_seconds=300)
    data = completion_data(uuid7())

    assert await cached.seconds(TENANT, data) is None
    assert await cached.seconds(TENANT, data) is None
    assert source.calls == 1


async def test_cache_keys_by_person_and_course_and_tenant(clock: FrozenClock) -> None:
    source = CountingSource(60)
    cached = CachedSource(source, clock=clock, ttl_seconds=300)
    person = uuid7()

    await cached.seconds(TENANT, completion_data(person))
    await cached.seconds(TENANT, completion_data(person))  # another message, same course
    await cached.seconds(TENANT, completion_data(person, course_id="other"))
    await cached.seconds(TENANT, completion_data(uuid7()))
    await cached.seconds("globex", completion_data(person))
    assert source.calls == 4


async def test_cache_is_bounded(clock: FrozenClock) -> None:
    source = CountingSource(60)
    cached = CachedSource(source, clock=clock, ttl_seconds=300, max_entries=3)
    people = [uuid7() for _ in range(4)]
    for person in people:
        await cached.seconds(TENANT, completion_data(person))
    assert len(cached) == 3

    await cached.seconds(TENANT, completion_data(people[-1]))
    assert source.calls == 4
    await cached.seconds(TENANT, completion_data(people[0]))  # the oldest went first
    assert source.calls == 5


async def test_cache_does_not_keep_failures(clock: FrozenClock) -> None:
    cached = CachedSource(FailingSource(), clock=clock, ttl_seconds=300)
    with pytest.raises(ConnectionError):
        await cached.seconds(TENANT, completion_data(uuid7()))
    assert len(cached) == 0


# --- enricher ------------------------------------------------------------------------------


async def test_enricher_adds_learning_time_when_the_flag_is_on(flags: EnrichmentFlags) -> None:
    enricher = Enricher(CountingSource(5400), flags, timeout_seconds=2)
    fields = await enricher.extra_fields(
        TENANT, "ep_1", ON, "completion.recorded", completion_data(uuid7())
    )
    assert fields == {"learning_time": 5400}


async def test_enricher_adds_nothing_when_the_flag_is_off(flags: EnrichmentFlags) -> None:
    source = CountingSource(5400)
    enricher = Enricher(source, flags, timeout_seconds=2)
    data = completion_data(uuid7())

    assert await enricher.extra_fields(TENANT, "ep_1", {}, "completion.recorded", data) == {}
    off = {LEARNING_TIME: {"enabled": False}}
    assert await enricher.extra_fields(TENANT, "ep_1", off, "completion.recorded", data) == {}
    assert source.calls == 0


async def test_enricher_leaves_other_events_alone(flags: EnrichmentFlags) -> None:
    source = CountingSource(5400)
    enricher = Enricher(source, flags, timeout_seconds=2)
    data = completion_data(uuid7())

    assert await enricher.extra_fields(TENANT, "ep_1", ON, "credit.earned", data) == {}
    assert source.calls == 0


async def test_enricher_omits_the_field_when_nothing_is_known(flags: EnrichmentFlags) -> None:
    enricher = Enricher(CountingSource(None), flags, timeout_seconds=2)
    fields = await enricher.extra_fields(
        TENANT, "ep_1", ON, "completion.recorded", completion_data(uuid7())
    )
    assert fields == {}


async def test_a_failing_source_omits_the_field_and_counts_a_failure(
    flags: EnrichmentFlags,
) -> None:
    enricher = Enricher(FailingSource(), flags, timeout_seconds=2)
    before = enrichment_count("failure")

    fields = await enricher.extra_fields(
        TENANT, "ep_1", ON, "completion.recorded", completion_data(uuid7())
    )

    assert fields == {}
    assert enrichment_count("failure") == before + 1


async def test_a_malformed_payload_is_a_failure_not_an_error(
    flags: EnrichmentFlags, clock: FrozenClock
) -> None:
    source = CachedSource(CountingSource(60), clock=clock, ttl_seconds=300)
    enricher = Enricher(source, flags, timeout_seconds=2)
    before = enrichment_count("failure")

    fields = await enricher.extra_fields(
        TENANT, "ep_1", ON, "completion.recorded", {"course_id": COURSE}
    )

    assert fields == {}
    assert enrichment_count("failure") == before + 1


async def test_a_slow_source_is_given_up_on_at_the_timeout(flags: EnrichmentFlags) -> None:
    enricher = Enricher(SlowSource(), flags, timeout_seconds=0.05)
    before = enrichment_count("failure")

    started = time.monotonic()
    fields = await enricher.extra_fields(
        TENANT, "ep_1", ON, "completion.recorded", completion_data(uuid7())
    )
    elapsed = time.monotonic() - started

    assert fields == {}
    assert elapsed < 0.5
    assert enrichment_count("failure") == before + 1


async def test_hits_and_misses_are_counted(flags: EnrichmentFlags, clock: FrozenClock) -> None:
    source = CountingSource(5400)
    enricher = Enricher(
        CachedSource(source, clock=clock, ttl_seconds=300), flags, timeout_seconds=2
    )
    data = completion_data(uuid7())
    hits, misses, failures = (enrichment_count(r) for r in ("hit", "miss", "failure"))

    for endpoint_id in ("ep_1", "ep_2", "ep_3"):
        fields = await enricher.extra_fields(TENANT, endpoint_id, ON, "completion.recorded", data)
        assert fields == {"learning_time": 5400}

    assert source.calls == 1
    assert enrichment_count("miss") == misses + 1
    assert enrichment_count("hit") == hits + 2
    assert enrichment_count("failure") == failures


async def test_an_uncached_source_counts_every_lookup_as_a_miss(flags: EnrichmentFlags) -> None:
    enricher = Enricher(CountingSource(60), flags, timeout_seconds=2)
    misses = enrichment_count("miss")
    data = completion_data(uuid7())

    await enricher.extra_fields(TENANT, "ep_1", ON, "completion.recorded", data)
    await enricher.extra_fields(TENANT, "ep_1", ON, "completion.recorded", data)

    assert enrichment_count("miss") == misses + 2


async def test_enricher_with_the_records_source_end_to_end(
    database: Database, clock: FrozenClock, acme: str, flags: EnrichmentFlags
) -> None:
    person_id = await seed_completion(database, clock, Decimal("1.50"))
    enricher = Enricher(
        CachedSource(RecordsSource(database), clock=clock, ttl_seconds=300),
        flags,
        timeout_seconds=2,
    )
    data = completion_data(person_id)

    assert await enricher.extra_fields(TENANT, "ep_1", ON, "completion.recorded", data) == {
        "learning_time": 5400
    }
    assert await enricher.extra_fields(TENANT, "ep_1", {}, "completion.recorded", data) == {}


# --- wiring --------------------------------------------------------------------------------


@pytest.fixture
async def idle_database(tmp_path: Path) -> AsyncIterator[Database]:
    """A database the source is built with but never queries."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'idle.db'}", pool_size=1)
    yield database
    await database.dispose()


def settings_for(tmp_path: Path, **values: Any) -> Settings:
    return Settings(var_dir=tmp_path, _env_file=None, **values)


async def test_build_source_defaults_to_cached_records(
    tmp_path: Path, idle_database: Database, clock: FrozenClock
) -> None:
    source = build_source(settings_for(tmp_path), idle_database, clock)
    assert isinstance(source, CachedSource)
    assert isinstance(source.source, RecordsSource)

    uncached = build_source(
        settings_for(tmp_path, learning_time_cache_seconds=0), idle_database, clock
    )
    assert isinstance(uncached, RecordsSource)


async def test_build_source_sql_needs_a_url_and_a_query(
    tmp_path: Path, idle_database: Database, clock: FrozenClock, sqlite_warehouse: str
) -> None:
    with pytest.raises(ValueError, match="LEARNING_TIME_SQL_URL"):
        build_source(
            settings_for(tmp_path, learning_time_source="sql", learning_time_sql_query="SELECT 1"),
            idle_database,
            clock,
        )
    with pytest.raises(ValueError, match="LEARNING_TIME_SQL_QUERY"):
        build_source(
            settings_for(
                tmp_path, learning_time_source="sql", learning_time_sql_url=sqlite_warehouse
            ),
            idle_database,
            clock,
        )
    source = build_source(
        settings_for(
            tmp_path,
            learning_time_source="sql",
            learning_time_sql_url=sqlite_warehouse,
            learning_time_sql_query=WAREHOUSE_QUERY,
            learning_time_cache_seconds=0,
        ),
        idle_database,
        clock,
    )
    assert isinstance(source, SqlSource)
    try:
        assert await source.seconds(TENANT, completion_data(uuid7())) == 5400
    finally:
        source.dispose()
