"""Scheduled lifecycle events on PostgreSQL: what a million pending rows cost, and the sweep.

    .venv/bin/python bench/lifecycle.py [--due 100000] [--pending 1000000] [--batches 20]
                                        [--keep]

A benchmark that prints its figures; nothing is asserted on times (exit status 1 only when
something went wrong: a due row not fired, or fired twice). In one run it:

1. creates a fresh database `bench_lifecycle`, migrated, with one tenant and one active
   course with plenty of seats; the saga runs in this process on DBOS, with the fake
   partners in a temporary directory, exactly as a request would run it, and the
   garbage collector is tuned as in the service's processes;
2. enrollment creation with no pending rows: --batches assignments of 20 new students each
   through `Assigner` (the saga, to its confirm step that writes three lifecycle rows per
   enrollment); milliseconds per assignment;
3. writes --pending rows due in a year (the million pending reminders of a large program),
   and times the same assignments again;
4. the sweep: --due enrollments (written in bulk) with one due row each — four fifths
   reminders (an event and a queued email each: email is queued, not sent), one fifth
   expiries (a status change, an event, access and budget released) — swept by
   `Sweeper.sweep_batch` until none is due, beside the pending rows: events/s, and the
   process's RSS sampled along the way;
5. ceiling: the raw claim on the same table — `DELETE … WHERE key IN (SELECT … FOR UPDATE
   SKIP LOCKED LIMIT 500) RETURNING …` in a transaction per batch, and nothing else —
   over the same number of due rows;
6. prints a summary with the targets beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import psycopg
from dbos import DBOS

from common import machine, rss_mib, say
from coursegate import durable, migrate
from coursegate.app import tune_garbage_collector
from coursegate.config import Settings, sync_database_url
from coursegate.db import Database
from coursegate.enrollments.adapters import adapters_from_settings
from coursegate.enrollments.assignment import Assigner
from coursegate.enrollments.schemas import AssignRequest
from coursegate.enrollments.sweeper import SWEEP_BATCH, Sweeper
from coursegate.kit.clock import SystemClock
from coursegate.tenancy.service import TenancyService

PG = "postgresql://postgres@127.0.0.1:5432"
NAME = "bench_lifecycle"
RAW = f"{PG}/{NAME}"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{NAME}"
TENANT, COURSE = "bench", "bench-course"
STUDENTS_PER_ASSIGN = 20


def admin(statement: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(statement)


async def setup(database: Database, clock: SystemClock, seats: int) -> None:
    await migrate.upgrade(database.engine)
    DBOS.migrate(sync_database_url(URL), schema=durable.DBOS_SCHEMA)
    async with database.transaction() as session:
        await TenancyService(session, clock).create_tenant(TENANT)
    today = date.today()
    conn = await asyncpg.connect(RAW)
    try:
        now = datetime.now(UTC)
        await conn.execute(
            "INSERT INTO courses VALUES ($1, $2, 'Bench course', NULL, $3, $4, $5, 90, NULL,"
            " 'active', $6, $6)",
            TENANT,
            COURSE,
            today - timedelta(days=1),
            today + timedelta(days=10),
            today + timedelta(days=300),
            now,
        )
        await conn.execute(
            "INSERT INTO seat_orders VALUES ($1, 'bench-order', $2, $3, $4)",
            TENANT,
            COURSE,
            seats,
            now,
        )
        await conn.execute(
            "INSERT INTO seats (tenant_id, id, course_id, order_ref, status, previously_dropped,"
            " created_at, updated_at) SELECT $1, gen_random_uuid(), $2, 'bench-order',"
            " 'available', false, $3, $3 FROM generate_series(1, $4)",
            TENANT,
            COURSE,
            now,
            seats,
        )
    finally:
        await conn.close()


async def time_assignments(assigner: Assigner, batches: int, label: str) -> float:
    """Milliseconds per assignment of 20 new students, median of `batches`."""
    timings: list[float] = []
    for _ in range(batches):
        students = [
            {"student_id": uuid.uuid4().hex, "email": f"{uuid.uuid4().hex[:12]}@example.edu"}
            for _ in range(STUDENTS_PER_ASSIGN)
        ]
        body = AssignRequest.model_validate({"students": students})
        start = time.perf_counter()
        made = await assigner.assign(TENANT, COURSE, body)
        timings.append((time.perf_counter() - start) * 1000)
        assert len(made) == STUDENTS_PER_ASSIGN
    timings.sort()
    median = timings[len(timings) // 2]
    say(
        f"  assignment of {STUDENTS_PER_ASSIGN}, {label}: median {median:.1f} ms"
        f" (min {timings[0]:.1f}, max {timings[-1]:.1f})"
    )
    return median


async def write_pending(count: int) -> None:
    conn = await asyncpg.connect(RAW)
    try:
        await conn.execute(
            "INSERT INTO scheduled_events (tenant_id, enrollment_id, kind, due_at)"
            " SELECT $1, gen_random_uuid(), 'course_expired',"
            " now() + interval '365 days' + g * interval '1 second'"
            " FROM generate_series(1, $2) AS g",
            TENANT,
            count,
        )
        await conn.execute("ANALYZE scheduled_events")
    finally:
        await conn.close()


async def write_due(count: int) -> None:
    """`count` assigned enrollments (people with an identifier, seats, rows in bulk), each
    with one due row."""
    conn = await asyncpg.connect(RAW)
    try:
        await conn.execute(
            """
            WITH p AS (
                INSERT INTO people (tenant_id, id, name, email, created_at)
                SELECT $1, gen_random_uuid(), NULL, 'learner' || g || '@example.edu', now()
                FROM generate_series(1, $3) AS g
                RETURNING id
            ), i AS (
                INSERT INTO person_identifiers (tenant_id, namespace, value, person_id, created_at)
                SELECT $1, 'student_id', id::text, id, now() FROM p
            ), numbered AS (
                SELECT id AS person_id, row_number() OVER () AS n FROM p
            ), s AS (
                INSERT INTO seats (tenant_id, id, course_id, order_ref, status,
                                   previously_dropped, created_at, updated_at)
                SELECT $1, gen_random_uuid(), $2, 'bench-order', 'assigned', false, now(), now()
                FROM generate_series(1, $3)
                RETURNING id
            ), seat_numbered AS (
                SELECT id AS seat_id, row_number() OVER () AS n FROM s
            ), e AS (
                INSERT INTO enrollments (tenant_id, id, course_id, person_id, seat_id, batch_id,
                                         status, access_ends_at, created_at, updated_at)
                SELECT $1, gen_random_uuid(), $2, numbered.person_id, seat_numbered.seat_id,
                       gen_random_uuid(), 'assigned', now(), now() - interval '4 days', now()
                FROM numbered JOIN seat_numbered USING (n)
                RETURNING id
            )
            INSERT INTO scheduled_events (tenant_id, enrollment_id, kind, due_at)
            SELECT $1, e.id,
                   CASE WHEN n % 5 = 0 THEN 'course_expired'
                        ELSE 'reminder_no_access_3_days' END,
                   now() - interval '1 hour' + n * interval '10 milliseconds'
            FROM (SELECT id, row_number() OVER () AS n FROM e) AS e
            """,
            TENANT,
            COURSE,
            count,
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def sweep(sweeper: Sweeper, due: int) -> tuple[float, list[float]]:
    samples = [rss_mib(os.getpid())]
    fired = 0
    start = time.perf_counter()
    batches = 0
    while (taken := await sweeper.sweep_batch(SWEEP_BATCH)) > 0:
        fired += taken
        batches += 1
        if batches % 20 == 0:
            samples.append(rss_mib(os.getpid()))
    elapsed = time.perf_counter() - start
    samples.append(rss_mib(os.getpid()))
    if fired != due:
        raise SystemExit(f"swept {fired} rows, {due} were due")
    return fired / elapsed, samples


async def raw_claim(due: int) -> float:
    """The ceiling: claim-and-delete only, a transaction per batch of 500."""
    conn = await asyncpg.connect(RAW)
    try:
        await conn.execute(
            "INSERT INTO scheduled_events (tenant_id, enrollment_id, kind, due_at)"
            " SELECT $1, gen_random_uuid(), 'reminder_no_access_3_days',"
            " now() - interval '1 hour' + g * interval '10 milliseconds'"
            " FROM generate_series(1, $2) AS g",
            TENANT,
            due,
        )
        await conn.execute("ANALYZE scheduled_events")
        statement = await conn.prepare(
            "DELETE FROM scheduled_events WHERE (tenant_id, enrollment_id, kind) IN ("
            " SELECT tenant_id, enrollment_id, kind FROM scheduled_events"
            " WHERE due_at <= now() ORDER BY due_at LIMIT 500 FOR UPDATE SKIP LOCKED)"
            " RETURNING tenant_id, enrollment_id, kind, due_at"
        )
        claimed = 0
        start = time.perf_counter()
        while True:
            async with conn.transaction():
                rows = await statement.fetch()
            claimed += len(rows)
            if not rows:
                break
        elapsed = time.perf_counter() - start
        if claimed != due:
            raise SystemExit(f"raw claim took {claimed}, {due} were due")
        return claimed / elapsed
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as var_dir:
        settings = Settings(
            database_url=URL, var_dir=Path(var_dir), log_level="WARNING", _env_file=None
        )
        clock = SystemClock()
        database = Database(URL, pool_size=4)
        try:
            await setup(database, clock, seats=(args.batches * 2 + 3) * STUDENTS_PER_ASSIGN)
            adapters = adapters_from_settings(settings)
            await durable.launch(settings, database, durable.Role.API, clock, adapters)
            tune_garbage_collector()  # as the service's processes do once started
            try:
                assigner = Assigner(database, clock, credits=100, timeout_seconds=60)
                await time_assignments(assigner, 3, "warm-up")
                without = await time_assignments(assigner, args.batches, "no pending rows")
                await write_pending(args.pending)
                say(f"  wrote {args.pending:,} pending rows, due in a year")
                with_pending = await time_assignments(
                    assigner, args.batches, f"{args.pending:,} pending rows"
                )
            finally:
                durable.shutdown()
            await write_due(args.due)
            say(f"  wrote {args.due:,} enrollments with a due row each")
            rate, samples = await sweep(Sweeper(database, clock, adapters), args.due)
            ceiling = await raw_claim(args.due)
        finally:
            await database.dispose()

    say()
    say(f"machine: {machine()}; PostgreSQL on the same machine")
    say(f"{'figure':<58} {'measured':>14}  target")
    say(f"{'assignment (20 students), no pending rows':<58} {without:>11.1f} ms")
    say(
        f"{f'assignment (20 students), {args.pending:,} pending rows':<58}"
        f" {with_pending:>11.1f} ms  the same"
    )
    say(f"{'sweep, events/s':<58} {rate:>14,.0f}  >= 5,000")
    say(f"{'ceiling: raw SKIP LOCKED claim-and-delete, rows/s':<58} {ceiling:>14,.0f}")
    say(f"{'sweep / ceiling':<58} {rate / ceiling:>14.0%}")
    say(
        f"{'sweeper RSS (MiB) start / peak / end':<58}"
        f" {samples[0]:.0f} / {max(samples):.0f} / {samples[-1]:.0f}"
    )
    say(
        f"{'peak RSS of the process (ru_maxrss, MiB)':<58}"
        f" {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>14.0f}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    admin(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{NAME}"')
    try:
        return asyncio.run(run(args))
    finally:
        if not args.keep:
            admin(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
