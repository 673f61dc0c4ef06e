"""Inbound completions against ONE API process on PostgreSQL, beside this machine's ceilings.

    .venv/bin/python bench/inbound.py [--duration 20] [--quick] [--people 1000] [--keep]
                                      [--quiet-wait 120]

A benchmark that prints its figures; nothing is asserted on times (the exit status is 1 only
when something went wrong: error responses, a failed pgbench, a stale bench/inbound_txn.sql).
In one run it:

1. creates a fresh database `bench_inbound`, migrates it with `coursegate db upgrade`, makes a
   tenant with `coursegate tenants create`, starts `coursegate api` exactly as production does
   (COURSEGATE_ENV=production, a generated master key, no access log, WARNING logs) and, through
   its HTTP API, a program, an hmac-authorization provider with a generated key, and P people
   (plus two people given 10 and 10,000 earlier completions directly in SQL);
2. records the SQL of one real signed request (the app in-process; SQLAlchemy's log and the
   asyncpg calls, since the hot path runs on the raw driver), prints it, and checks that
   bench/inbound_txn.sql still runs the same statements;
3. loads the API with wrk (bench/inbound.lua) at 16 and 64 connections, every request a unique
   completion signed just before the run (a 201 that writes a completion and usually a credit),
   with where the CPU went (API, PostgreSQL, wrk, other processes) and its cost per request;
4. times 200 sequential requests for a person with 10 and with 10,000 earlier completions;
5. measures the ceilings: a hello-world FastAPI app under the same uvicorn settings
   (bench/hello.py, ceiling A) and pgbench running the service's transaction (ceiling B), with
   the simple query protocol as specified and again with -M prepared (as asyncpg sends them);
6. prints a summary, with the targets beside the ratios.

The machine may be shared: before each load it waits (up to --quiet-wait seconds) for other
processes to go quiet, and says loudly when they took CPU during a load anyway.
It cleans up after itself: servers are stopped, the database is dropped (unless --keep).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import logging
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from cryptography.fernet import Fernet

from common import (
    CLK_TCK,
    ROOT,
    VENV_BIN,
    Server,
    coursegate,
    loud,
    machine,
    postgres_pids,
    process_ticks,
    rss_mib,
    say,
)
from coursegate.kit.signing import hmac_authorization_header

BENCH_DIR = ROOT / "bench"
LUA_SCRIPT = BENCH_DIR / "inbound.lua"
TXN_SCRIPT = BENCH_DIR / "inbound_txn.sql"
HELLO_APP = BENCH_DIR / "hello.py"

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
ADMIN_DATABASE = "test"
DATABASE = "bench_inbound"
DATABASE_URL = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{DATABASE}"

TENANT = "bench"
PROGRAM = "bench"
PROVIDER = "tablet"
KEY_ID = "k1"
NAMESPACE = "doc"
INBOUND_PATH = f"/v1/inbound/{TENANT}/{PROVIDER}/completions"
HELLO_PATH = "/hello"
COMPLETED_AT = "2026-06-10T10:00:00Z"

CONNECTIONS = (16, 64)
WRK_THREADS = 2
PGBENCH_THREADS = 2
WRK_TIMEOUT = "10s"
HISTORY_SIZES = (10, 10_000)
HISTORY_REQUESTS = 200
MIN_REQUESTS = 10_000
SIGNATURE_WINDOW_S = 300

NOISE_OTHER_CPU_PCT = 25.0
QUIET_BUSY_PCT = 15.0

TARGET_OF_PGBENCH = 0.45
TARGET_OF_HELLO = 0.20
TARGET_P99_MS_AT_16 = 25.0


# --- machine and processes ---------------------------------------------------------------


def system_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


@dataclass
class CpuSnapshot:
    at: float
    groups: dict[str, dict[int, int]]
    """Ticks of each process (by pid) of each group."""
    busy: int
    total: int


class CpuSampler:
    """Samples CPU ticks of named process groups while a load runs, to show where CPU went."""

    def __init__(self, groups: dict[str, Callable[[], Sequence[int]]]) -> None:
        self.groups = groups
        self.snapshots: list[CpuSnapshot] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _snapshot(self) -> CpuSnapshot:
        ticks = {name: {p: process_ticks(p) for p in pids()} for name, pids in self.groups.items()}
        busy, total = system_ticks()
        return CpuSnapshot(time.monotonic(), ticks, busy, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.snapshots.append(self._snapshot())
            self._stop.wait(0.25)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def share(self, start: float, end: float) -> dict[str, float] | None:
        """CPU % (100 = one core) of each group between two monotonic times.

        Per process, so that a process that ends in the window (a database connection the
        pool closed) keeps the CPU it used, and one that starts in it counts from zero.
        """
        inside = [s for s in self.snapshots if start <= s.at <= end]
        if len(inside) < 2:
            return None
        first, last = inside[0], inside[-1]
        seconds = last.at - first.at
        cores = len(os.sched_getaffinity(0))
        out = {}
        for name in self.groups:
            latest: dict[int, int] = {}
            for snapshot in inside:
                latest.update(snapshot.groups[name])
            used = sum(t - first.groups[name].get(pid, 0) for pid, t in latest.items())
            out[name] = 100 * used / CLK_TCK / seconds
        busy = 100 * cores * (last.busy - first.busy) / max(1, last.total - first.total)
        out["other"] = max(0.0, busy - sum(out.values()))
        out["idle"] = max(0.0, 100 * cores - busy)
        return out


def cpu_text(share: dict[str, float] | None) -> str:
    if share is None:
        return "cpu: (too short to sample)"
    cores = len(os.sched_getaffinity(0))
    parts = " ".join(f"{name} {value:.0f}%" for name, value in share.items())
    return f"cpu (% of one core, {cores * 100}% in all): {parts}"


def per_request_text(
    share: dict[str, float] | None, rate: float, names: Sequence[str], unit: str = "request"
) -> str:
    """CPU time per request (or transaction) of each named group, from its share and the rate."""
    if share is None or rate <= 0:
        return ""
    parts = ", ".join(f"{name} {10 * share[name] / rate:.2f} ms" for name in names)
    return f"cpu per {unit}: {parts}"


def wait_for_quiet(max_wait: float, label: str) -> None:
    """Wait (up to `max_wait` s) until the machine is idle before a load: on a shared machine
    other processes (and our own autovacuum after a load) would take CPU from the figures."""
    if max_wait <= 0:
        return
    cores = len(os.sched_getaffinity(0))
    started = time.monotonic()
    while True:
        busy0, total0 = system_ticks()
        time.sleep(1.0)
        busy1, total1 = system_ticks()
        busy = 100 * cores * (busy1 - busy0) / max(1, total1 - total0)
        waited = time.monotonic() - started
        if busy <= QUIET_BUSY_PCT:
            if waited > 1.5:
                say(f"(waited {waited:.0f} s for a quiet machine before {label})")
            return
        if waited >= max_wait:
            say(
                f"(machine still busy, {busy:.0f}% CPU in use by others, after {waited:.0f} s; "
                f"measuring {label} anyway)"
            )
            return


# --- database -------------------------------------------------------------------------------


def admin_execute(*statements: str) -> None:
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=ADMIN_DATABASE, autocommit=True
    ) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def bench_connect(autocommit: bool = True) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=DATABASE, autocommit=autocommit
    )


def bench_execute(*statements: str) -> None:
    with bench_connect() as conn:
        for statement in statements:
            conn.execute(statement.encode())


def drop_database() -> None:
    admin_execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


# A UUIDv7-like id made in SQL: 48-bit millisecond prefix, random rest (as the service's ids).
SQL_TIME_ORDERED_ID = (
    "(lpad(to_hex(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')"
    " || substr(replace(gen_random_uuid()::text, '-', ''), 13))::uuid"
)


def give_history(person_id: str, count: int) -> None:
    """`count` earlier completions of 6.00 hours each, with consistent totals and credits."""
    with bench_connect(autocommit=False) as conn:
        conn.execute(
            "INSERT INTO completions (tenant_id, id, program_id, person_id, provider_id, course_id,"
            " course_name, content_hours, completed_at, recorded_at, content_digest)"
            f" SELECT %(tenant)s, {SQL_TIME_ORDERED_ID}, %(program)s, %(person)s, %(provider)s,"
            " 'history-' || g, 'Bench course', 600, %(completed)s, now(),"
            " md5(g::text) || md5((g + 1)::text)"
            " FROM generate_series(1, %(count)s) AS g",
            {
                "tenant": TENANT,
                "program": PROGRAM,
                "person": person_id,
                "provider": PROVIDER,
                "completed": COMPLETED_AT,
                "count": count,
            },
        )
        conn.execute(
            "INSERT INTO credit_totals (tenant_id, program_id, person_id, hours_total,"
            " credits_total, updated_at) VALUES (%s, %s, %s, %s, %s, now())",
            (TENANT, PROGRAM, person_id, 600 * count, count),
        )
        conn.execute(
            "INSERT INTO credits (tenant_id, program_id, person_id, sequence, id, completion_id,"
            " awarded_at) SELECT tenant_id, program_id, person_id,"
            f" row_number() OVER (ORDER BY id), {SQL_TIME_ORDERED_ID}, id, now()"
            " FROM completions WHERE tenant_id = %s AND program_id = %s AND person_id = %s",
            (TENANT, PROGRAM, person_id),
        )
        conn.commit()


def ledger_check() -> str:
    """Every person's totals equal the sum of their completions, and their credits add up."""
    with bench_connect() as conn:
        row = conn.execute(
            "WITH c AS (SELECT person_id, sum(content_hours) AS hours, count(*) AS n"
            "   FROM completions WHERE tenant_id = %(t)s GROUP BY person_id),"
            " k AS (SELECT person_id, count(*) AS n, max(sequence) AS top"
            "   FROM credits WHERE tenant_id = %(t)s GROUP BY person_id)"
            " SELECT count(*),"
            "  count(*) FILTER (WHERE t.hours_total <> coalesce(c.hours, 0)"
            "    OR t.credits_total <> t.hours_total / 600"
            "    OR t.credits_total <> coalesce(k.n, 0)"
            "    OR t.credits_total <> coalesce(k.top, 0)),"
            "  coalesce(sum(c.n), 0)"
            " FROM credit_totals t LEFT JOIN c USING (person_id) LEFT JOIN k USING (person_id)"
            " WHERE t.tenant_id = %(t)s",
            {"t": TENANT},
        ).fetchone()
    assert row is not None
    people, wrong, completions = row
    verdict = "ok" if wrong == 0 else f"{wrong} PEOPLE WITH INCONSISTENT TOTALS OR CREDITS"
    return (
        f"ledger check: {people} people with totals, {completions} completions: "
        f"hours_total = sum(completions), credits_total = hours_total // 6 h = credit rows: "
        f"{verdict}"
    )


class SessionCounter:
    """PostgreSQL's count of sessions opened on the bench database (pg_stat_database), read
    over one connection of its own so that reading it opens none."""

    def __init__(self) -> None:
        self.conn = bench_connect()

    def read(self) -> int:
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        row = self.conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        assert row is not None
        count: int = row[0]
        return count

    def close(self) -> None:
        self.conn.close()


def pool_size() -> int:
    """The API's connection pool size: coursegate.db.Database's default."""
    from coursegate.db import Database

    size: int = inspect.signature(Database).parameters["pool_size"].default
    return size


def completions_of_run(run: str) -> int:
    with bench_connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM completions WHERE tenant_id = %s AND course_id LIKE %s",
            (TENANT, f"c-{run}-%"),
        ).fetchone()
    assert row is not None
    count: int = row[0]
    return count


# --- setup through the product's own CLI and HTTP API ---------------------------------------


def post(client: httpx.Client, path: str, body: dict[str, Any], api_key: str) -> dict[str, Any]:
    response = client.post(path, json=body, headers={"Authorization": f"Bearer {api_key}"})
    if response.status_code != 201:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
    data: dict[str, Any] = response.json()
    return data


async def create_people(base_url: str, api_key: str, values: Sequence[str]) -> dict[str, str]:
    """POST /v1/people for each identifier value, 16 at a time; value -> person id."""
    headers = {"Authorization": f"Bearer {api_key}"}
    limit = asyncio.Semaphore(16)
    ids: dict[str, str] = {}

    async def one(client: httpx.AsyncClient, value: str) -> None:
        async with limit:
            response = await client.post(
                "/v1/people",
                json={"identifiers": [{"namespace": NAMESPACE, "value": value}]},
                headers=headers,
            )
        if response.status_code != 201:
            raise RuntimeError(f"POST /v1/people: {response.status_code} {response.text}")
        ids[value] = response.json()["id"]

    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(one(client, v) for v in values))
    return ids


@dataclass
class Fixture:
    api_key: str
    secret: str
    person_ids: dict[str, str]


def set_up(api: Server, env: dict[str, str], people: int) -> Fixture:
    started = time.monotonic()
    drop_database()
    admin_execute(f'CREATE DATABASE "{DATABASE}"')
    coursegate(env, "db", "upgrade")
    tenant_line = coursegate(env, "tenants", "create", TENANT, "--json").strip().splitlines()[-1]
    api_key: str = json.loads(tenant_line)["api_key"]
    api.start("/healthz")
    with httpx.Client(base_url=api.url, timeout=30) as client:
        post(
            client,
            "/v1/programs",
            {
                "id": PROGRAM,
                "name": "Bench program",
                "jurisdiction": "US_CO",
                "hours_per_credit": "6",
                "identifier_namespace": NAMESPACE,
            },
            api_key,
        )
        provider = post(
            client,
            "/v1/providers",
            {
                "id": PROVIDER,
                "program_id": PROGRAM,
                "scheme": "hmac-authorization",
                "keys": [{"key_id": KEY_ID}],
            },
            api_key,
        )
    secret: str = provider["keys"][0]["secret"]
    values = [
        *(f"person-{i}" for i in range(people)),
        *(f"history-{n}" for n in HISTORY_SIZES),
        "capture-0",
    ]
    person_ids = asyncio.run(create_people(api.url, api_key, values))
    for n in HISTORY_SIZES:
        give_history(person_ids[f"history-{n}"], n)
    bench_execute("VACUUM ANALYZE")
    say(
        f"setup: database {DATABASE} migrated; tenant {TENANT}, program {PROGRAM} (US_CO, 6 h per "
        f"credit), provider {PROVIDER} (hmac-authorization, key {KEY_ID}), {people} people "
        f"+ {len(HISTORY_SIZES)} with history {'/'.join(f'{n:,}' for n in HISTORY_SIZES)}, "
        f"in {time.monotonic() - started:.1f} s"
    )
    return Fixture(api_key=api_key, secret=secret, person_ids=person_ids)


# --- signed requests ------------------------------------------------------------------------


def completion_body(person: str, course: str, hundredths: int) -> bytes:
    return (
        f'{{"person_id": "{person}", "state_code": "US_CO", "course_id": "{course}", '
        f'"course_name": "Bench course", "content_hours": {hundredths // 100}.{hundredths % 100:02d}, '
        f'"completed_at": "{COMPLETED_AT}"}}'
    ).encode()


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    at = int(time.time()) if timestamp is None else timestamp
    header = hmac_authorization_header(KEY_ID, secret, "POST", INBOUND_PATH, at, body)
    return {"Authorization": header, "Content-Type": "application/json"}


def write_requests(path: Path, secret: str, run: str, count: int, people: int) -> float:
    """`count` unique signed completions, one per line: "<Authorization>\\t<body>"."""
    started = time.monotonic()
    rng = random.Random(f"{run}-{count}")
    timestamp = int(time.time())
    with path.open("w") as out:
        for n in range(count):
            body = completion_body(
                f"person-{rng.randrange(people)}", f"c-{run}-{n}", rng.randint(100, 999)
            )
            header = hmac_authorization_header(
                KEY_ID, secret, "POST", INBOUND_PATH, timestamp, body
            )
            out.write(f"{header}\t{body.decode()}\n")
    return time.monotonic() - started


# --- SQL of one request ---------------------------------------------------------------------


class SqlRecorder(logging.Handler):
    """What one request sends to PostgreSQL, in the order sent.

    The service runs some statements through SQLAlchemy (which asyncpg executes as prepared
    statements) and some on the raw asyncpg connection, so SQLAlchemy's `sqlalchemy.engine`
    log alone misses statements, and asyncpg's own query logger reports late (call_soon) and
    skips prepared statements. So the driver's entry points are wrapped, for this capture
    only, to note each statement as it is sent; SQLAlchemy's log says which of them came
    through SQLAlchemy.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.recording = False
        self.sent: list[str] = []
        self.logged: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if self.recording:
            self.logged.add(" ".join(record.getMessage().split()))

    def note(self, query: str) -> None:
        if self.recording:
            self.sent.append(query)

    def source(self, query: str) -> str:
        if statement_kind(query) in ("BEGIN", "COMMIT", "ROLLBACK"):
            return ""
        return "sqlalchemy" if " ".join(query.split()) in self.logged else "raw driver"

    @contextlib.contextmanager
    def wrapping_driver(self) -> Iterator[None]:
        from asyncpg.connection import Connection  # type: ignore[import-untyped]
        from asyncpg.prepared_stmt import PreparedStatement  # type: ignore[import-untyped]

        originals: list[tuple[type, str, Any]] = []

        def patch(cls: type, name: str, wrapper: Callable[[Any], Any]) -> None:
            original = getattr(cls, name)
            originals.append((cls, name, original))
            setattr(cls, name, wrapper(original))

        def simple_query(original: Any) -> Any:
            async def execute(conn: Any, query: str, *args: Any, **kwargs: Any) -> Any:
                if not args:  # with arguments it goes through _execute, noted there
                    self.note(query)
                return await original(conn, query, *args, **kwargs)

            return execute

        def connection_query(original: Any) -> Any:
            async def run(conn: Any, query: str, *args: Any, **kwargs: Any) -> Any:
                self.note(query)
                return await original(conn, query, *args, **kwargs)

            return run

        def prepared(original: Any) -> Any:
            async def run(statement: Any, *args: Any, **kwargs: Any) -> Any:
                self.note(statement.get_query())
                return await original(statement, *args, **kwargs)

            return run

        patch(Connection, "execute", simple_query)
        for name in ("_execute", "_executemany"):
            patch(Connection, name, connection_query)
        for name in ("fetch", "fetchrow", "fetchval", "fetchmany", "executemany"):
            patch(PreparedStatement, name, prepared)
        try:
            yield
        finally:
            for cls, name, original in reversed(originals):
                setattr(cls, name, original)


@dataclass
class Capture:
    status: int
    ping: list[str]
    """The pool's pre-ping statements, sent before the transaction."""
    transaction: list[tuple[str, str]]
    """(source, SQL) of every statement the request sent (BEGIN and COMMIT too, if any)."""


async def capture_request_sql(secret_key: str, secret: str) -> Capture:
    """Send signed completions through the app in-process and record the SQL of the last."""
    from coursegate.app import create_app
    from coursegate.config import Environment, Settings
    from coursegate.kit.logs import configure_logging

    configure_logging("WARNING", "console")  # quiet the in-process app's request log
    engine_log = logging.getLogger("sqlalchemy.engine")
    recorder = SqlRecorder()
    engine_log.addHandler(recorder)
    engine_log.setLevel(logging.INFO)
    engine_log.propagate = False
    settings = Settings(
        env=Environment.PRODUCTION,
        database_url=DATABASE_URL,
        secret_key=secret_key,
        access_log=False,
    )
    app = create_app(settings)
    statuses = []
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            with recorder.wrapping_driver():
                # The first request opens the pooled connection; the second is the one
                # recorded, as the steady state sees it (a pooled connection: with pre-ping).
                for n in range(2):
                    recorder.recording = n == 1
                    body = completion_body("capture-0", f"c-capture-{n}", 725)  # 7.25 h
                    response = await client.post(
                        INBOUND_PATH, content=body, headers=signed_headers(secret, body)
                    )
                    statuses.append(response.status_code)
                recorder.recording = False
    finally:
        await app.state.database.dispose()
        if app.state.enqueuer is not None:
            app.state.enqueuer.close()
        engine_log.removeHandler(recorder)
        engine_log.setLevel(logging.WARNING)
    sent = recorder.sent
    ping: list[str] = []
    if [statement_kind(sql) for sql in sent[:3]] == ["BEGIN", "", "ROLLBACK"]:
        ping, sent = sent[:3], sent[3:]
    return Capture(
        status=statuses[-1],
        ping=ping,
        transaction=[(recorder.source(sql), sql) for sql in sent],
    )


def statement_kind(sql: str) -> str:
    """What a statement does, to compare sequences: "BEGIN", "SELECT providers",
    "INSERT completions", "WITH completions+credit_totals" (the tables a CTE writes), ..."""
    text = " ".join(sql.split()).upper().rstrip(";").strip()
    verb = text.split(" ", 1)[0]
    if verb not in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"):
        return verb
    written: list[str] = []
    for table in re.findall(r"\b(?:INSERT INTO|(?<!DO )UPDATE|DELETE FROM) (\w+)", text):
        if table.lower() not in written:
            written.append(table.lower())
    if written:
        return f"{verb} {'+'.join(written)}"
    read = re.search(r"\bFROM (\w+)", text)
    return f"{verb} {read.group(1).lower() if read else '?'}"


SQL_START = re.compile(r"^(BEGIN|COMMIT|ROLLBACK|SELECT|INSERT|UPDATE|DELETE|WITH)\b", re.I)


@dataclass
class TxnScript:
    kinds: list[str]
    """The kinds of statement in the file, in order of first appearance."""
    fewest: int
    most: int
    """Statements one transaction runs, over the script's \\if branches."""


def read_txn_script(path: Path) -> TxnScript:
    kinds: list[str] = []
    # One frame per open \if: statements before it, and the statements of each branch so far.
    stack: list[tuple[tuple[int, int], list[tuple[int, int]]]] = []
    count = (0, 0)
    statement: list[str] = []

    def flush() -> None:
        if statement:
            kind = statement_kind(" ".join(statement))
            if kind not in kinds:
                kinds.append(kind)
            statement.clear()

    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("--"):
            continue
        if line.startswith("\\"):
            flush()
            command = line.split()[0]
            if command == "\\if":
                stack.append((count, []))
                count = (0, 0)
            elif command in ("\\elif", "\\else"):
                stack[-1][1].append(count)
                count = (0, 0)
            elif command == "\\endif":
                before, branches = stack.pop()
                branches.append(count)
                count = (
                    before[0] + min(b[0] for b in branches),
                    before[1] + max(b[1] for b in branches),
                )
            continue
        if SQL_START.match(line) and not statement:
            count = (count[0] + 1, count[1] + 1)
        if not statement and not SQL_START.match(line):
            continue
        statement.append(line)
        if line.endswith(";"):
            flush()
    flush()
    return TxnScript(kinds=kinds, fewest=count[0], most=count[1])


# --- load generators ------------------------------------------------------------------------


@dataclass
class WrkResult:
    label: str
    connections: int
    expected_status: int
    unique: bool
    """Whether each pre-signed request must be sent at most once."""
    values: dict[str, int]
    statuses: dict[int, int]
    cpu: dict[str, float] | None = None

    @property
    def seconds(self) -> float:
        return self.values["duration_us"] / 1e6

    @property
    def requests(self) -> int:
        return self.values["requests"]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def ms(self, name: str) -> float:
        return self.values[name] / 1000

    @property
    def socket_errors(self) -> int:
        """Connect, read, write errors and timeouts (wrk's "status" errors are in `statuses`)."""
        return sum(self.values[f"err_{k}"] for k in ("connect", "read", "write", "timeout"))

    @property
    def unexpected(self) -> int:
        return sum(n for s, n in self.statuses.items() if s != self.expected_status)

    @property
    def errors(self) -> int:
        return self.unexpected + self.socket_errors

    @property
    def wrapped(self) -> int:
        return self.values["wrapped"]

    def reuse_text(self) -> str:
        used, available = self.values["used"], self.values["available"]
        if self.unique:
            return f"pre-signed requests used {used} of {available}"
        return f"{available} pre-signed requests cycled through (no uniqueness needed)"

    def line(self) -> str:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.label:<8} c={self.connections:<3} {self.rps:8.0f} req/s  "
            f"p50 {self.ms('p50_us'):6.2f} ms  p90 {self.ms('p90_us'):6.2f} ms  "
            f"p99 {self.ms('p99_us'):6.2f} ms  max {self.ms('max_us'):7.2f} ms  "
            f"({self.requests} requests in {self.seconds:.1f} s; statuses {{{statuses}}}; "
            f"socket errors {self.socket_errors}; {self.reuse_text()})"
        )


def run_wrk(
    label: str,
    server: Server,
    path: str,
    requests_file: Path,
    connections: int,
    duration: int,
    expected_status: int,
    cpu_groups: dict[str, Callable[[], Sequence[int]]],
) -> WrkResult:
    argv = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{duration}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        "-s",
        str(LUA_SCRIPT),
        server.url,
        "--",
        str(requests_file),
        path,
        str(WRK_THREADS),
    ]
    client: list[int] = []
    groups = {**cpu_groups, "wrk": lambda: client}
    with CpuSampler(groups) as sampler:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client.append(process.pid)
        stdout, stderr = process.communicate()
        ended = time.monotonic()
    found = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH ")), None)
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{stdout}\n{stderr}")
    values: dict[str, int] = {}
    statuses: dict[int, int] = {}
    for pair in found.split()[1:]:
        key, value = pair.split("=", 1)
        if key.startswith("status_"):
            statuses[int(key.removeprefix("status_"))] = int(value)
        else:
            values[key] = round(float(value))
    unique = path == INBOUND_PATH
    result = WrkResult(label, connections, expected_status, unique, values, statuses)
    # The load itself is the last `duration` seconds of wrk's life (before: loading the file).
    result.cpu = sampler.share(ended - duration + 0.5, ended - 0.3)
    return result


@dataclass
class PgbenchResult:
    mode: str
    connections: int
    tps: float
    latency_ms: float
    processed: int
    failed: int
    aborted: bool
    cpu: dict[str, float] | None = None
    output: str = field(default="", repr=False)

    def line(self) -> str:
        return (
            f"pgbench  c={self.connections:<3} {self.tps:8.0f} tps    (-M {self.mode}) "
            f"latency average {self.latency_ms:6.2f} ms  "
            f"({self.processed} transactions, {self.failed} failed"
            f"{', CLIENTS ABORTED' if self.aborted else ''})"
        )


def prepared_variant(script: Path, out: Path) -> Path:
    """The script for -M prepared: pgbench makes each variable a parameter there, so the
    quotes that the simple protocol needs around text variables (':name') come off."""
    out.write_text(re.sub(r"'(:[A-Za-z_][A-Za-z0-9_]*)'", r"\1", script.read_text()))
    return out


def run_pgbench(
    script: Path, mode: str, connections: int, duration: int, people: int
) -> PgbenchResult:
    argv = [
        "pgbench",
        "-n",
        *([] if mode == "simple" else ["-M", mode]),
        "-f",
        str(script),
        "-c",
        str(connections),
        "-j",
        str(PGBENCH_THREADS),
        "-T",
        str(duration),
        "-D",
        f"people={people}",
        "-h",
        PG_HOST,
        "-p",
        str(PG_PORT),
        "-U",
        PG_USER,
        DATABASE,
    ]
    client: list[int] = []
    with CpuSampler({"postgres": postgres_pids, "pgbench": lambda: client}) as sampler:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        client.append(process.pid)
        stdout, stderr = process.communicate()
        ended = time.monotonic()
    output = stdout + stderr

    def number(pattern: str) -> float:
        found = re.search(pattern, output)
        return float(found.group(1)) if found else float("nan")

    failed = number(r"number of failed transactions: (\d+)")
    processed = number(r"number of transactions actually processed: (\d+)")
    result = PgbenchResult(
        mode=mode,
        connections=connections,
        tps=number(r"tps = ([\d.]+) \(without initial connection time\)"),
        latency_ms=number(r"latency average = ([\d.]+) ms"),
        processed=0 if math.isnan(processed) else int(processed),
        failed=0 if math.isnan(failed) else int(failed),
        aborted=process.returncode != 0,
        output=output,
    )
    result.cpu = sampler.share(ended - duration + 0.5, ended - 0.3)
    return result


# --- history ------------------------------------------------------------------------------------


@dataclass
class HistoryResult:
    earlier: int
    latencies_ms: list[float]
    failures: int

    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    def p99(self) -> float:
        return percentile(self.latencies_ms, 99)


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(0, math.ceil(pct / 100 * len(ordered)) - 1)
    return ordered[rank]


def measure_history(api: Server, secret: str, people: int) -> list[HistoryResult]:
    results = []
    with httpx.Client(base_url=api.url, timeout=30) as client:
        for n in range(20):  # warm the connection and the server's statement caches
            body = completion_body(f"person-{n % people}", f"c-histwarm-{n}", 250)
            client.post(INBOUND_PATH, content=body, headers=signed_headers(secret, body))
        for earlier in HISTORY_SIZES:
            latencies: list[float] = []
            failures = 0
            for n in range(HISTORY_REQUESTS):
                body = completion_body(f"history-{earlier}", f"c-hist{earlier}-{n}", 425)
                headers = signed_headers(secret, body)
                started = time.perf_counter()
                response = client.post(INBOUND_PATH, content=body, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                failures += response.status_code != 201
            results.append(HistoryResult(earlier, latencies, failures))
    return results


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    inbound: dict[int, WrkResult] = field(default_factory=dict)
    hello: dict[int, WrkResult] = field(default_factory=dict)
    pgbench: dict[int, PgbenchResult] = field(default_factory=dict)
    pgbench_prepared: dict[int, PgbenchResult] = field(default_factory=dict)
    history: list[HistoryResult] = field(default_factory=list)
    rss_before: float = float("nan")
    rss_after: float = float("nan")
    txn: TxnScript | None = None
    problems: list[str] = field(default_factory=list)
    noise: list[str] = field(default_factory=list)

    def note_noise(self, label: str, cpu: dict[str, float] | None) -> None:
        """Other processes' CPU during a load makes its figures unreliable: say so."""
        if cpu is not None and cpu["other"] > NOISE_OTHER_CPU_PCT:
            self.noise.append(f"{label}: other processes used {cpu['other']:.0f}% CPU")
            loud(f"NOISY MACHINE during {label}: {cpu['other']:.0f}% CPU went to other processes")


def print_statements(capture: Capture, txn: TxnScript) -> list[str]:
    """Print the captured transaction; returns the problems found comparing it to the script."""
    problems = []
    say(
        f"SQL of one accepted request as sent to PostgreSQL (status {capture.status}; "
        "a completion that crosses a credit):"
    )
    if capture.ping:
        pinged = " | ".join(" ".join(sql.split()) for sql in capture.ping)
        say(f"  pool pre-ping: {pinged}   ({len(capture.ping)} round trips before the transaction)")
    for number, (source, sql) in enumerate(capture.transaction, 1):
        kind = statement_kind(sql)
        note = f"   [{kind}]" if kind.startswith("WITH") else ""
        say(f"  {number:2}. {source:<10} {' '.join(sql.split())[:80]}{note}")
    round_trips = len(capture.ping) + len(capture.transaction)
    say(
        f"  = {len(capture.transaction)} statements (BEGIN and COMMIT counted if sent); "
        f"{round_trips} round trips per request"
        + (f" ({len(capture.ping)} of them the pool's pre-ping)" if capture.ping else "")
    )
    if capture.status != 201:
        problems.append(f"the SQL capture request got {capture.status}, not 201")
    captured: list[str] = []
    for kind in (statement_kind(sql) for _, sql in capture.transaction):
        if kind not in captured:
            captured.append(kind)
    if captured != txn.kinds:
        problem = (
            f"{TXN_SCRIPT.name} is OUT OF DATE: the service runs {captured}, the script "
            f"{txn.kinds}; update the script (see its header)"
        )
        problems.append(problem)
        loud(problem)
    else:
        say(f"  {TXN_SCRIPT.name} runs the same statements in the same order: {captured}")
    return problems


def run(args: argparse.Namespace, work: Path) -> Outcome:
    outcome = Outcome()
    secret_key = Fernet.generate_key().decode()
    env = {
        **os.environ,
        "COURSEGATE_ENV": "production",
        "COURSEGATE_SECRET_KEY": secret_key,
        "COURSEGATE_DATABASE_URL": DATABASE_URL,
        "COURSEGATE_ACCESS_LOG": "false",
        "COURSEGATE_LOG_LEVEL": "WARNING",
    }
    api_argv = [str(VENV_BIN / "coursegate"), "api"]
    if args.plain_uvicorn:
        api_argv = [str(VENV_BIN / "python"), str(BENCH_DIR / "plain_api.py"), "api"]
        say("api: uvicorn's own httptools protocol, without the server's guard")
    with Server("coursegate api", api_argv, env, work / "api.log") as api:
        fixture = set_up(api, env, args.people)
        outcome.txn = read_txn_script(TXN_SCRIPT)
        capture = asyncio.run(capture_request_sql(secret_key, fixture.secret))
        outcome.problems += print_statements(capture, outcome.txn)
        api_groups: dict[str, Callable[[], Sequence[int]]] = {
            "api": lambda: [api.pid],
            "postgres": postgres_pids,
        }

        outcome.rss_before = rss_mib(api.pid)
        say(f"api pid {api.pid} on port {api.port}; RSS before load {outcome.rss_before:.1f} MiB")
        sessions = SessionCounter()
        warm_file = work / "warm.txt"
        write_requests(warm_file, fixture.secret, "warm", 20_000, args.people)
        warm = run_wrk("warm-up", api, INBOUND_PATH, warm_file, 16, args.warmup, 201, api_groups)
        say(warm.line())
        rate = warm.rps
        for connections in CONNECTIONS:
            run_name = f"c{connections}"
            count = max(MIN_REQUESTS, math.ceil(rate * args.duration * 1.5))
            requests_file = work / f"{run_name}.txt"
            bench_execute("CHECKPOINT")
            wait_for_quiet(args.quiet_wait, f"inbound c={connections}")
            # Signed now: a signature is good for 300 s around its timestamp.
            took = write_requests(requests_file, fixture.secret, run_name, count, args.people)
            say(f"pre-signed {count} unique completions for c={connections} in {took:.1f} s")
            sessions_before = sessions.read()
            profiler = start_profile(api.pid, args.duration, work / f"{run_name}.stacks", args)
            result = run_wrk(
                "inbound",
                api,
                INBOUND_PATH,
                requests_file,
                connections,
                args.duration,
                201,
                api_groups,
            )
            outcome.inbound[connections] = result
            if profiler is not None:
                profiler.wait(timeout=60)
                say(profile_summary(work / f"{run_name}.stacks"))
                kept = Path(__file__).parent / "out" / f"inbound-{run_name}.stacks"
                kept.parent.mkdir(exist_ok=True)
                shutil.copy(work / f"{run_name}.stacks", kept)
                say(f"         collapsed stacks kept in {kept.relative_to(Path.cwd())}")
            rate = max(rate, result.rps)
            say(result.line())
            say(f"         {cpu_text(result.cpu)}")
            say(f"         {per_request_text(result.cpu, result.rps, ('api', 'postgres'))}")
            outcome.note_noise(f"inbound c={connections}", result.cpu)
            time.sleep(1.0)  # statistics reach pg_stat_database within a second
            opened = sessions.read() - sessions_before
            say(
                f"         PostgreSQL sessions opened during the run: {opened} "
                f"(the API's pool keeps {pool_size()}; overflow connections close when returned)"
            )
            stored = completions_of_run(run_name)
            say(
                f"         database holds {stored} completions of this run "
                f"({stored - result.statuses.get(201, 0)} more than wrk counted: in flight at "
                "the end)"
            )
            if result.errors or result.wrapped:
                problem = (
                    f"inbound c={connections}: {result.errors} ERRORS "
                    f"({result.unexpected} responses other than 201, {result.socket_errors} "
                    f"socket errors); {result.wrapped} requests repeated (pre-signed file too "
                    "short)"
                )
                outcome.problems.append(problem)
                loud(problem)
        sessions.close()
        outcome.rss_after = rss_mib(api.pid)
        say(f"api RSS after load {outcome.rss_after:.1f} MiB")
        os.remove(warm_file)

        bench_execute("VACUUM ANALYZE")
        wait_for_quiet(args.quiet_wait, "history")
        outcome.history = measure_history(api, fixture.secret, args.people)
        for h in outcome.history:
            say(
                f"history  {h.earlier:>6,} earlier completions: {HISTORY_REQUESTS} sequential "
                f"requests, p50 {h.p50():.2f} ms  p99 {h.p99():.2f} ms  "
                f"max {max(h.latencies_ms):.2f} ms  failures {h.failures}"
            )
            if h.failures:
                problem = f"history {h.earlier}: {h.failures} REQUESTS NOT 201"
                outcome.problems.append(problem)
                loud(problem)
        say(ledger_check())

    # Ceiling A: the same requests against hello world, the API process stopped.
    hello_argv = [
        str(VENV_BIN / "python"),
        str(HELLO_APP),
        *(["--plain"] if args.plain_uvicorn else []),
    ]
    with Server("hello", hello_argv, dict(os.environ), work / "hello.log") as hello:
        hello.start("/docs")
        hello_file = work / "hello.txt"
        write_requests(hello_file, fixture.secret, "hello", 50_000, args.people)
        for connections in CONNECTIONS:
            wait_for_quiet(args.quiet_wait, f"hello c={connections}")
            result = run_wrk(
                "hello",
                hello,
                HELLO_PATH,
                hello_file,
                connections,
                args.duration,
                200,
                {"hello": lambda: [hello.pid]},
            )
            outcome.hello[connections] = result
            say(result.line())
            say(f"         {cpu_text(result.cpu)}")
            say(f"         {per_request_text(result.cpu, result.rps, ('hello',))}")
            outcome.note_noise(f"hello c={connections}", result.cpu)
            if result.errors:
                problem = f"hello c={connections}: {result.errors} ERRORS"
                outcome.problems.append(problem)
                loud(problem)

    # Ceiling B: the service's transaction, straight from pgbench: first as asked for (simple
    # query protocol), then with prepared statements as the service's driver sends them.
    scripts = {"simple": TXN_SCRIPT, "prepared": prepared_variant(TXN_SCRIPT, work / "txn.sql")}
    for mode, script in scripts.items():
        for connections in CONNECTIONS:
            bench_execute("CHECKPOINT")
            wait_for_quiet(args.quiet_wait, f"pgbench -M {mode} c={connections}")
            pg = run_pgbench(script, mode, connections, args.duration, args.people)
            (outcome.pgbench if mode == "simple" else outcome.pgbench_prepared)[connections] = pg
            say(pg.line())
            say(f"         {cpu_text(pg.cpu)}")
            say(
                f"         {per_request_text(pg.cpu, pg.tps, ('postgres', 'pgbench'), 'transaction')}"
            )
            outcome.note_noise(f"pgbench -M {mode} c={connections}", pg.cpu)
            if pg.failed or pg.aborted or math.isnan(pg.tps):
                problem = f"pgbench -M {mode} c={connections}: FAILED\n{pg.output}"
                outcome.problems.append(problem)
                loud(problem)
    say(ledger_check())
    return outcome


def summary(outcome: Outcome, args: argparse.Namespace) -> None:
    say()
    say("=" * 100)
    say(f"machine: {machine()}")
    say(
        f"run:     {args.duration} s per load, wrk -t{WRK_THREADS}, {args.people} people, "
        f"one `coursegate api` process (uvicorn, 1 worker)"
    )
    for c, r in outcome.inbound.items():
        say(
            f"inbound  c={c}: {r.rps:.0f} req/s  p50 {r.ms('p50_us'):.2f} ms  "
            f"p99 {r.ms('p99_us'):.2f} ms  errors {r.errors}"
            + ("   <-- ERRORS" if r.errors else "")
        )
    say(
        "hello    "
        + " | ".join(
            f"c={c}: {r.rps:.0f} req/s  p50 {r.ms('p50_us'):.2f} ms  p99 {r.ms('p99_us'):.2f} ms"
            for c, r in outcome.hello.items()
        )
    )
    statements = "?"
    if outcome.txn is not None:
        t = outcome.txn
        statements = f"{t.fewest}" if t.fewest == t.most else f"{t.fewest}-{t.most}"
    say(
        "pgbench  "
        + " | ".join(f"c={c}: {r.tps:.0f} tps" for c, r in outcome.pgbench.items())
        + f"   ({statements} statements per transaction, as one request sends them)"
    )
    say(
        "pgbench  "
        + " | ".join(f"c={c}: {r.tps:.0f} tps" for c, r in outcome.pgbench_prepared.items())
        + "   (the same with -M prepared, as the service's driver sends them)"
    )
    for c, r in outcome.inbound.items():
        pg = outcome.pgbench.get(c)
        prepared = outcome.pgbench_prepared.get(c)
        hello = outcome.hello.get(c)
        of_pg = r.rps / pg.tps if pg and pg.tps else float("nan")
        of_prepared = r.rps / prepared.tps if prepared and prepared.tps else float("nan")
        of_hello = r.rps / hello.rps if hello else float("nan")
        say(
            f"ratio    c={c}: {of_pg:.0%} of pgbench (target >= {TARGET_OF_PGBENCH:.0%}: "
            f"{'met' if of_pg >= TARGET_OF_PGBENCH else 'NOT met'}; {of_prepared:.0%} of "
            f"-M prepared), {of_hello:.0%} of hello-world (target >= {TARGET_OF_HELLO:.0%}: "
            f"{'met' if of_hello >= TARGET_OF_HELLO else 'NOT met'})"
        )
    at16 = outcome.inbound.get(16)
    if at16 is not None:
        p99 = at16.ms("p99_us")
        say(
            f"p99      c=16: {p99:.2f} ms (target <= {TARGET_P99_MS_AT_16:.0f} ms: "
            f"{'met' if p99 <= TARGET_P99_MS_AT_16 else 'NOT met'})"
        )
    say(
        "history  "
        + " | ".join(
            f"{h.earlier:,} earlier: p50 {h.p50():.2f} ms p99 {h.p99():.2f} ms"
            for h in outcome.history
        )
    )
    say(f"rss      before {outcome.rss_before:.1f} MiB after {outcome.rss_after:.1f} MiB")
    if outcome.noise:
        say("=" * 100)
        loud("OTHER PROCESSES COMPETED FOR THE CPU: these figures understate this machine")
        for noise in outcome.noise:
            say(f"  - {noise}")
    if outcome.problems:
        say("=" * 100)
        loud(f"THIS RUN HAD {len(outcome.problems)} PROBLEM(S):")
        for problem in outcome.problems:
            say(f"  - {problem}")
    say("=" * 100)


def start_profile(
    pid: int, duration: int, out: Path, args: argparse.Namespace
) -> subprocess.Popen[bytes] | None:
    """With --profile, sample the API process with py-spy while wrk loads it."""
    if not args.profile:
        return None
    spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, duration - 1)),
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
            "--rate",
            "200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _package_of(frame: str) -> str:
    """`func (path/to/site-packages/pkg/mod.py:12)` -> `pkg`; our code by its domain folder."""
    path = frame.rsplit(" (", 1)[-1].rstrip(")").split(":")[0]
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/coursegate/" in path:
        return "coursegate." + path.split("/coursegate/", 1)[1].split("/", 1)[0].removesuffix(".py")
    return "stdlib:" + path.rsplit("/", 1)[-1].removesuffix(".py")


def profile_summary(stacks: Path, top: int = 18) -> str:
    """Where the API's CPU went: samples by package of the innermost frame (self time), and
    the share of samples that passed through each of our functions (inclusive)."""
    if not stacks.exists():
        return "         profile: py-spy wrote nothing (is it installed? pip install py-spy)"
    by_package: dict[str, int] = {}
    ours: dict[str, int] = {}
    total = 0
    for line in stacks.read_text().splitlines():
        frames_text, _, count_text = line.rpartition(" ")
        count = int(count_text)
        total += count
        frames = frames_text.split(";")
        package = _package_of(frames[-1])
        by_package[package] = by_package.get(package, 0) + count
        for frame in {f for f in frames if "/coursegate/" in f}:
            name = frame.split(" (")[0] + " " + _package_of(frame)
            ours[name] = ours.get(name, 0) + count
    lines = [f"         profile: {total} samples; self time by package:"]
    for name, n in sorted(by_package.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"           {100 * n / total:5.1f}%  {name}")
    lines.append("         inclusive time of our functions:")
    for name, n in sorted(ours.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"           {100 * n / total:5.1f}%  {name}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Inbound completions vs hello-world and pgbench ceilings (prints figures)."
    )
    parser.add_argument("--duration", type=int, default=20, help="seconds per load (default 20)")
    parser.add_argument("--quick", action="store_true", help="5 s per load")
    parser.add_argument("--people", type=int, default=1000, help="people to spread load over")
    parser.add_argument("--keep", action="store_true", help=f"keep the database {DATABASE}")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120,
        help="before each load, wait up to this many seconds for other processes to go "
        "quiet (a shared machine); 0 to not wait (default 120)",
    )
    parser.add_argument(
        "--plain-uvicorn",
        action="store_true",
        help="run the API on uvicorn's own protocol, without the guard (bench/plain_api.py)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the API with py-spy during the inbound runs and print where time went",
    )
    args = parser.parse_args()
    if args.quick:
        args.duration = 5
    args.warmup = 2 if args.quick else 3
    if args.duration + 30 > SIGNATURE_WINDOW_S:
        parser.error(f"signatures are good for {SIGNATURE_WINDOW_S} s: keep --duration below that")
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (apt-get install -y {tool})")

    say(f"machine: {machine()}")
    work = Path(tempfile.mkdtemp(prefix="bench-inbound-"))
    outcome: Outcome | None = None
    try:
        outcome = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if args.keep:
            say(f"database {DATABASE} kept ({DATABASE_URL})")
        else:
            drop_database()
    summary(outcome, args)
    return 1 if outcome.problems else 0


if __name__ == "__main__":
    sys.exit(main())
