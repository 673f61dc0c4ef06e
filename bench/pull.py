"""Pulling DataPass entries on PostgreSQL: records per second against the insert ceiling.

    .venv/bin/python bench/pull.py [--entries 100000] [--page-size 100] [--keep]

A benchmark that prints its figures; nothing is asserted on times (exit status 1 only when
the run did not create every entry exactly once). In one run it:

1. creates a fresh database `bench_pull`, migrated, with one tenant and one `datapass`
   connector aimed at bench/datapass_partner.py, a separate process serving --entries
   validated entries in pages of --page-size (each page encoded once, so the partner
   costs as little as it can);
2. a first run of the whole backlog through `Runner`, the code `coursegate pull` and the
   schedule run: token, every page fetched, sorted, committed with its events, the
   watermark last; records/s, and the process's RSS sampled along the pages;
3. a second run, nothing new (every entry skipped by the insert-or-ignore): records/s;
4. ceiling: the same rows and their events inserted with one multi-row INSERT each per
   page (`INSERT … SELECT FROM unnest(…)`), a transaction per page, nothing else: no HTTP,
   no parsing, no checks; rows/s;
5. prints a summary with the target beside the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import psycopg

from common import ROOT, VENV_BIN, Server, machine, rss_mib, say
from coursegate import migrate
from coursegate.app import tune_garbage_collector
from coursegate.connectors.runner import Progress, Runner
from coursegate.connectors.schemas import ConnectorCreate
from coursegate.connectors.service import ConnectorService
from coursegate.db import Database
from coursegate.enrollments.adapters import Adapters
from coursegate.kit.clock import SystemClock
from coursegate.kit.secrets import EnvSecretStore, SecretStores
from coursegate.tenancy.service import TenancyService
from datapass_partner import DEFINITION, entry

PG = "postgresql://postgres@127.0.0.1:5432"
NAME = "bench_pull"
RAW = f"{PG}/{NAME}"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{NAME}"
TENANT, CONNECTOR = "bench", "datapass"
SECRET = uuid.uuid4().hex  # the partner accepts any client secret


def admin(statement: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(statement)


async def setup(database: Database, partner: Server) -> None:
    await migrate.upgrade(database.engine)
    clock = SystemClock()
    stores = SecretStores({"env": EnvSecretStore({"BENCH_SECRET": SECRET})})
    async with database.transaction() as session:
        await TenancyService(session, clock).create_tenant(TENANT)
        body = ConnectorCreate.model_validate(
            {
                "id": CONNECTOR,
                "kind": "datapass",
                "config": {
                    "auth_url": f"{partner.url}/oauth/token",
                    "api_base_url": f"{partner.url}/api",
                    "client_id": "coursegate",
                    "client_secret_ref": "env:BENCH_SECRET",
                    "definition_id": DEFINITION,
                },
            }
        )
        await ConnectorService(session, clock, stores, allow_private=True).create(TENANT, body)


async def pull(database: Database, label: str) -> tuple[float, list[float], int, int]:
    """records/s, RSS samples, pages, created."""
    samples = [rss_mib(os.getpid())]

    def sample(progress: Progress) -> None:
        if progress.pages % 50 == 0:
            samples.append(rss_mib(os.getpid()))

    stores = SecretStores({"env": EnvSecretStore({"BENCH_SECRET": SECRET})})
    runner = Runner(
        database, SystemClock(), stores, Adapters.inert(), allow_private=True, progress=sample
    )
    start = time.perf_counter()
    result = await runner.run(TENANT, CONNECTOR, trigger="manual")
    elapsed = time.perf_counter() - start
    samples.append(rss_mib(os.getpid()))
    if result.status != "succeeded":
        raise SystemExit(f"{label} run failed: {result.error_class}: {result.message}")
    records = result.created + result.skipped
    say(f"  {label}: {result.summary()} in {elapsed:.1f} s")
    return records / elapsed, samples, result.pages, result.created


async def ceiling(entries: int, page_size: int) -> float:
    """The same rows and their events, one multi-row INSERT each per page, in a
    transaction per page; under another connector id, so nothing conflicts."""
    now = datetime.now(UTC)
    conn = await asyncpg.connect(RAW)
    try:
        insert_authorizations = await conn.prepare(
            "INSERT INTO authorizations (tenant_id, id, connector_id, external_id, type,"
            " validated_at, organisation, data, created_at)"
            " SELECT $1, a.id, 'ceiling', a.external_id, $2, a.validated_at, a.organisation,"
            " a.data, $3 FROM unnest($4::uuid[], $5::varchar[], $6::timestamptz[],"
            " $7::jsonb[], $8::jsonb[]) AS a(id, external_id, validated_at, organisation, data)"
        )
        insert_events = await conn.prepare(
            "INSERT INTO events (tenant_id, id, type, occurred_at, data)"
            " SELECT $1, e.id, 'authorization.validated', $2, e.data"
            " FROM unnest($3::uuid[], $4::jsonb[]) AS e(id, data)"
        )
        pages = []
        for offset in range(0, entries, page_size):
            batch = [entry(n) for n in range(offset + 1, min(offset + page_size, entries) + 1)]
            ids = [uuid.uuid4() for _ in batch]
            validated = [datetime.fromisoformat(str(e["last_validated_at"])) for e in batch]
            events = [
                json.dumps(
                    {
                        "authorization_id": str(i),
                        "connector_id": "ceiling",
                        "external_id": e["public_id"],
                        "type": e["type"],
                        "validated_at": e["last_validated_at"],
                        "organisation": e["organisation"],
                        "data": e["data"],
                    }
                )
                for i, e in zip(ids, batch, strict=True)
            ]
            pages.append((batch, ids, validated, events))
        start = time.perf_counter()
        for batch, ids, validated, events in pages:
            async with conn.transaction():
                await insert_authorizations.fetch(
                    TENANT,
                    DEFINITION,
                    now,
                    ids,
                    [str(e["public_id"]) for e in batch],
                    validated,
                    [json.dumps(e["organisation"]) for e in batch],
                    [json.dumps(e["data"]) for e in batch],
                )
                await insert_events.fetch(TENANT, now, [uuid.uuid4() for _ in batch], events)
        elapsed = time.perf_counter() - start
        stored = await conn.fetchval(
            "SELECT count(*) FROM authorizations WHERE connector_id = 'ceiling'"
        )
        if stored != entries:
            raise SystemExit(f"ceiling stored {stored} rows of {entries}")
        return entries / elapsed
    finally:
        await conn.close()


async def run(args: argparse.Namespace, partner: Server) -> int:
    database = Database(URL, pool_size=4)
    try:
        await setup(database, partner)
        tune_garbage_collector()  # as `coursegate pull` and the service's processes do
        first, samples, pages, created = await pull(database, "first run, the backlog")
        if created != args.entries:
            raise SystemExit(f"the first run created {created} of {args.entries}")
        again, _, _, created_again = await pull(database, "second run, nothing new")
        if created_again != 0:
            raise SystemExit(f"the second run created {created_again}")
        top = await ceiling(args.entries, args.page_size)
    finally:
        await database.dispose()

    say()
    say(f"machine: {machine()}; PostgreSQL and the partner on the same machine")
    say(f"{'figure':<58} {'measured':>14}  target")
    say(f"{f'first run: {args.entries:,} entries, {pages:,} pages, records/s':<58} {first:>14,.0f}")
    say(f"{'second run, nothing new, records/s':<58} {again:>14,.0f}")
    say(f"{'ceiling: one multi-row INSERT per page, rows + events/s':<58} {top:>14,.0f}")
    say(f"{'first run / ceiling':<58} {first / top:>14.0%}  >= 50%")
    quarters = [samples[round(q * (len(samples) - 1) / 4)] for q in range(5)]
    say(
        f"{'RSS (MiB) at 0, 1/4, 1/2, 3/4 and all of the pages; peak':<58}"
        f" {' / '.join(f'{v:.0f}' for v in quarters)}; {max(samples):.0f}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    admin(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{NAME}"')
    with tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp:
        return measure(args, Path(tmp))


def measure(args: argparse.Namespace, tmp: Path) -> int:
    partner = Server(
        "partner",
        [
            str(VENV_BIN / "python"),
            str(ROOT / "bench" / "datapass_partner.py"),
            "--entries",
            str(args.entries),
            "--page-size",
            str(args.page_size),
        ],
        dict(os.environ),
        tmp / "partner.log",
    )
    try:
        partner.start("/ready")
        return asyncio.run(run(args, partner))
    finally:
        partner.stop()
        if not args.keep:
            admin(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
