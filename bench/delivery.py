"""Outbound webhook delivery by ONE worker process on PostgreSQL, beside its ceilings.

    .venv/bin/python bench/delivery.py [--deliveries 50000] [--concurrency 16,64,128]
                                       [--naive 5000] [--pending 1000000] [--quick] [--keep]

A benchmark that prints its figures; nothing is asserted on times (exit status 1 only when
something went wrong: a delivery not delivered, a receiver error). In one run it:

1. creates a fresh database `bench_delivery`, migrates it with `coursegate db upgrade`, makes a
   tenant with `coursegate tenants create` and one endpoint (through the service, as the API
   does) pointing at bench/receiver.py, a local server answering 200 at once;
2. writes N `completion.recorded` events (a realistic 400-byte payload) once;
3. for each concurrency C: starts `coursegate worker` exactly as production does
   (COURSEGATE_ENV=production, COURSEGATE_DISPATCH_CONCURRENCY=C, WARNING logs), makes N
   deliveries due in one commit, and times until none is pending: deliveries/s, the worker's
   CPU per delivery and its peak RSS;
4. ceiling: raw aiohttp POSTs of the same body to the same receiver at the same concurrency,
   from one process on uvloop (what the worker would do if it had no database to keep);
5. comparison: the naive design, one DBOS workflow (with one step) per delivery, for --naive
   deliveries, on the same database;
6. memory and speed with --pending deliveries pending but not due (a receiver down for a day):
   the same N due deliveries at the middle concurrency, the worker's RSS before and after;
7. prints a summary with the targets beside the figures.

It cleans up after itself: processes are stopped, the database is dropped (unless --keep).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from cryptography.fernet import Fernet

from common import (
    CLK_TCK,
    ROOT,
    VENV_BIN,
    Server,
    machine,
    postgres_pids,
    process_ticks,
    rss_mib,
    say,
)

PG = "postgresql://postgres@127.0.0.1:5432"
ADMIN_DATABASE = "test"
DATABASE = "bench_delivery"
DATABASE_URL = f"{PG}/{DATABASE}"
TENANT = "bench"

TARGET_PER_WORKER = 2000.0
TARGET_OF_RAW = 0.25

PAYLOAD: dict[str, Any] = {
    "completion_id": "0190a6c4-5e1f-7c3a-9b2d-4f6e8a1c3d5e",
    "program_id": "us-co-earned-time",
    "provider_id": "tablet-vendor",
    "person": {
        "id": "0190a6c4-1111-7c3a-9b2d-4f6e8a1c3d5e",
        "identifiers": [{"namespace": "us_co_doc_id", "value": "1234567"}],
    },
    "course_id": "ged-math-101",
    "course_name": "GED Mathematical Reasoning, unit 4: linear equations",
    "content_hours": "13.50",
    "completed_at": "2026-06-10T12:00:00.000Z",
}


# --- database ---------------------------------------------------------------------------------


def admin(*statements: str) -> None:
    with psycopg.connect(f"{PG}/{ADMIN_DATABASE}", autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def bench_sql(statement: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        cursor = conn.execute(statement, params)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def coursegate(env: dict[str, str], *args: str) -> str:
    return subprocess_run([str(VENV_BIN / "coursegate"), *args], env)


def subprocess_run(argv: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[1:]} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


async def create_endpoint(env: dict[str, str], url: str) -> str:
    """One endpoint, through the service the API uses (secret generated and encrypted)."""
    from coursegate.config import Settings
    from coursegate.db import Database
    from coursegate.kit.clock import SystemClock
    from coursegate.kit.secrets import SecretBox
    from coursegate.webhooks.schemas import EndpointCreate
    from coursegate.webhooks.service import WebhookService

    settings = Settings(
        database_url=env["COURSEGATE_DATABASE_URL"],
        secret_key=env["COURSEGATE_SECRET_KEY"],
        env="production",
        _env_file=None,
    )
    database = Database(settings.resolved_database_url)
    try:
        async with database.transaction() as session:
            service = WebhookService(
                session, SystemClock(), SecretBox(settings.master_key()), allow_private=True
            )
            created = await service.create(
                TENANT, EndpointCreate(url=url, event_types=["completion.recorded"])
            )
            return str(created.endpoint.id)
    finally:
        await database.dispose()


def write_events(count: int) -> None:
    bench_sql(
        """
        INSERT INTO events (tenant_id, id, type, occurred_at, data, routed_at)
        SELECT %(tenant)s, gen_random_uuid(), 'completion.recorded', now(), %(data)s::jsonb, now()
        FROM generate_series(1, %(count)s)
        """,
        {"tenant": TENANT, "data": json.dumps(PAYLOAD), "count": count},
    )


def reset_deliveries() -> None:
    bench_sql("TRUNCATE delivery_attempts, deliveries")


def make_due(endpoint_id: str, count: int, *, not_due_for: str | None = None) -> None:
    """`count` deliveries of the events (cycling through them), due now or in the future."""
    due = "now()" if not_due_for is None else f"now() + interval '{not_due_for}'"
    bench_sql(
        f"""
        INSERT INTO deliveries (tenant_id, id, endpoint_id, event_id, origin, status, attempts,
                                next_attempt_at, created_at)
        SELECT %(tenant)s, gen_random_uuid(), %(endpoint)s, e.id, 'event', 'pending', 0,
               {due}, now()
        FROM (SELECT id, row_number() OVER () AS n FROM events) e
        JOIN generate_series(0, %(count)s - 1) g ON e.n = g %% (SELECT count(*) FROM events) + 1
        """,
        {"tenant": TENANT, "endpoint": endpoint_id, "count": count},
    )
    bench_sql("ANALYZE deliveries")


def pending_due() -> int:
    """Pending deliveries that are due or leased by the worker (not the ones parked a day out)."""
    rows = bench_sql(
        "SELECT count(*) FROM deliveries"
        " WHERE status = 'pending' AND next_attempt_at <= now() + interval '1 hour'"
    )
    return int(rows[0][0])


def status_counts() -> dict[str, int]:
    rows = bench_sql("SELECT status, count(*) FROM deliveries GROUP BY status")
    return {str(s): int(n) for s, n in rows}


# --- runs -------------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    count: int
    seconds: float
    cpu_ms_per: float | None = None
    pg_cpu_ms_per: float | None = None
    rss_start_mib: float | None = None
    rss_peak_mib: float | None = None

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def worker_run(
    env: dict[str, str], work: Path, endpoint_id: str, count: int, concurrency: int, label: str
) -> Run:
    worker_env = {
        **env,
        "COURSEGATE_DISPATCH_CONCURRENCY": str(concurrency),
        "COURSEGATE_DISPATCH_POLL_SECONDS": "0.1",
        "COURSEGATE_EXECUTOR_ID": f"bench-worker-{concurrency}-{uuid.uuid4().hex[:6]}",
    }
    worker = Server(
        "worker", [str(VENV_BIN / "coursegate"), "worker"], worker_env, work / f"worker-{label}.log"
    )
    with worker:
        worker.start("/healthz")
        time.sleep(1.0)  # let start-up settle before the clock starts
        rss_start = rss_mib(worker.pid)
        ticks_start = process_ticks(worker.pid)
        pg_start = sum(process_ticks(p) for p in postgres_pids())
        reset_due = time.perf_counter()
        make_due(endpoint_id, count)
        started = time.perf_counter()
        say(f"    {count:,} deliveries made due in {started - reset_due:.1f} s")
        peak = rss_start
        while pending_due() > 0:
            peak = max(peak, rss_mib(worker.pid))
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        cpu_ms = (process_ticks(worker.pid) - ticks_start) * 1000 / CLK_TCK
        pg_ms = (sum(process_ticks(p) for p in postgres_pids()) - pg_start) * 1000 / CLK_TCK
        peak = max(peak, rss_mib(worker.pid))
        time.sleep(0.5)  # the last attempts are written down on the next beat
    counts = status_counts()
    delivered = counts.get("delivered", 0)
    if delivered < count:
        raise RuntimeError(f"only {delivered} of {count} delivered: {counts}\n{worker.log_tail()}")
    return Run(label, count, elapsed, cpu_ms / count, pg_ms / count, rss_start, peak)


RAW_CLIENT = r"""
import asyncio, sys, time
import aiohttp, uvloop

async def main(url, count, concurrency, body):
    left = count
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=15),
    ) as http:
        async def worker():
            nonlocal left
            while left > 0:
                left -= 1
                async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    assert r.status == 200
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        print(time.perf_counter() - started)

uvloop.install()
asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()))
"""


def raw_run(url: str, count: int, concurrency: int) -> Run:
    body = json.dumps({"type": "completion.recorded", "timestamp": "x", "data": PAYLOAD})
    out = subprocess_run(
        [sys.executable, "-c", RAW_CLIENT, url, str(count), str(concurrency), body],
        dict(os.environ),
    )
    return Run(f"raw aiohttp c={concurrency}", count, float(out.strip().splitlines()[-1]))


NAIVE = r"""
import asyncio, json, sys, time
import aiohttp
from dbos import DBOS, Queue

URL, COUNT, CONCURRENCY, DB = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
BODY = sys.argv[5].encode()
http = None

@DBOS.step()
async def post(n: int) -> int:
    async with http.post(URL, data=BODY, headers={"Content-Type": "application/json"}) as r:
        await r.read()
        return r.status

@DBOS.workflow()
async def deliver(n: int) -> int:
    return await post(n)

async def main():
    global http
    DBOS(config={"name": "bench-naive", "system_database_url": DB,
                 "dbos_system_schema": "dbos_naive", "executor_id": "naive"})
    DBOS.launch()
    queue = await DBOS.register_queue_async("naive", worker_concurrency=CONCURRENCY)
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY))
    started = time.perf_counter()
    handles = [await queue.enqueue_async(deliver, n) for n in range(COUNT)]
    for h in handles:
        assert await h.get_result() == 200
    print(time.perf_counter() - started)
    await http.close()
    DBOS.destroy()

asyncio.run(main())
"""


def naive_run(url: str, count: int, concurrency: int) -> Run:
    body = json.dumps({"type": "completion.recorded", "timestamp": "x", "data": PAYLOAD})
    sync_url = DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    out = subprocess_run(
        [sys.executable, "-c", NAIVE, url, str(count), str(concurrency), sync_url, body],
        {**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    return Run(
        f"one DBOS workflow per delivery c={concurrency}",
        count,
        float(out.strip().splitlines()[-1]),
    )


# --- main -------------------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path) -> int:
    say(f"machine: {machine()}")
    say(f"python {sys.version.split()[0]}, PostgreSQL on 127.0.0.1:5432")
    admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", f"CREATE DATABASE {DATABASE}")
    env = {
        **os.environ,
        "COURSEGATE_ENV": "production",
        "COURSEGATE_DATABASE_URL": DATABASE_URL,
        "COURSEGATE_SECRET_KEY": Fernet.generate_key().decode(),
        "COURSEGATE_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
        "COURSEGATE_LOG_LEVEL": "WARNING",
        "COURSEGATE_APPLICATION_VERSION": "bench",
    }
    coursegate(env, "db", "upgrade")
    coursegate(env, "tenants", "create", TENANT, "--json")
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    runs: list[Run] = []
    raws: dict[int, Run] = {}
    receiver = Server(
        "receiver",
        [sys.executable, str(ROOT / "bench" / "receiver.py")],
        dict(os.environ),
        work / "receiver.log",
    )
    with receiver:
        receiver.start("/healthz")
        url = f"{receiver.url}/hook"
        endpoint_id = asyncio.run(create_endpoint(env, url))
        write_events(args.deliveries)
        say(f"\n{args.deliveries:,} deliveries to a receiver answering 200 at once")
        for c in concurrencies:
            reset_deliveries()
            say(f"  worker, concurrency {c}")
            result = worker_run(env, work, endpoint_id, args.deliveries, c, f"c{c}")
            runs.append(result)
            say(
                f"    {result.rate:,.0f} deliveries/s; CPU per delivery: worker"
                f" {result.cpu_ms_per:.3f} ms, PostgreSQL {result.pg_cpu_ms_per:.3f} ms;"
                f" RSS {result.rss_start_mib:.0f} → {result.rss_peak_mib:.0f} MiB"
            )
            raw = raw_run(url, args.deliveries, c)
            raws[c] = raw
            say(f"    ceiling, raw aiohttp at {c}: {raw.rate:,.0f} POSTs/s")
        middle = concurrencies[len(concurrencies) // 2]
        naive = None
        if args.naive:
            say(f"\n  the naive design: {args.naive:,} deliveries, one DBOS workflow each")
            naive = naive_run(url, args.naive, middle)
            say(f"    {naive.rate:,.0f} deliveries/s")
        pending_run = None
        if args.pending:
            reset_deliveries()
            say(f"\n  {args.pending:,} deliveries pending, not due for a day")
            started = time.perf_counter()
            make_due(endpoint_id, args.pending, not_due_for="1 day")
            say(f"    written in {time.perf_counter() - started:.0f} s")
            pending_run = worker_run(
                env, work, endpoint_id, args.deliveries, middle, f"pending-c{middle}"
            )
            say(
                f"    {pending_run.rate:,.0f} deliveries/s with them pending, "
                f"RSS {pending_run.rss_start_mib:.0f} → {pending_run.rss_peak_mib:.0f} MiB"
            )

    say("\nsummary")
    say(f"  {'run':<34} {'deliveries/s':>12} {'raw ceiling':>12} {'of raw':>7}")
    for r, c in zip(runs, concurrencies, strict=True):
        say(
            f"  {'worker c=' + str(c):<34} {r.rate:>12,.0f} {raws[c].rate:>12,.0f}"
            f" {r.rate / raws[c].rate:>7.0%}"
        )
    best = max(runs, key=lambda r: r.rate)
    say(
        f"  target: ≥ {TARGET_PER_WORKER:,.0f}/s per worker and ≥ {TARGET_OF_RAW:.0%} of raw —"
        f" best {best.rate:,.0f}/s ({best.label})"
    )
    if naive is not None:
        say(f"  naive, one DBOS workflow per delivery: {naive.rate:,.0f}/s")
    if pending_run is not None:
        say(
            f"  with {args.pending:,} pending: {pending_run.rate:,.0f}/s, worker RSS peak"
            f" {pending_run.rss_peak_mib:.0f} MiB (vs {runs[len(runs) // 2].rss_peak_mib:.0f}"
            " MiB with none)"
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--deliveries", type=int, default=50_000)
    parser.add_argument("--concurrency", default="16,64,128")
    parser.add_argument("--naive", type=int, default=5_000)
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument(
        "--quick", action="store_true", help="5,000 deliveries, 500 naive, 0 pending"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    if args.quick:
        args.deliveries, args.naive, args.pending = 5_000, 500, 0
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        try:
            return run(args, Path(tmp))
        finally:
            if not args.keep:
                with contextlib.suppress(psycopg.Error):
                    admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
