"""The operator console at scale on PostgreSQL: each page's server time beside /readyz.

    .venv/bin/python bench/console.py [--completions 1000000] [--learners 100000]
                                      [--attempts 1000000] [--loads 50] [--keep]

A benchmark that prints its figures; nothing is asserted on times. In one run it:

1. creates a fresh database `bench_console` (`coursegate db upgrade`), a tenant and an admin
   operator (`coursegate tenants create`, `coursegate operators create`), and starts
   `coursegate api` on it exactly as production does;
2. through the API: a program (6 hours a credit), a provider and a webhook endpoint;
3. in bulk SQL, one tenant's history over 60 days: --learners people with an identifier
   each, --completions completions spread over them (ids time-ordered, as the service
   makes them), their credit totals and one credit each, --attempts delivery attempts
   (five per message, the last succeeding) with their messages and events, and 500
   messages due now (a backlog);
4. ANALYZE, then the Overview's background count catching up with the whole history, timed
   (what a worker does once after an upgrade, and then every 30 s for what is new);
5. signs in and loads each page --loads times, one after another: p50 and p95 of the time
   the client waits on loopback, beside `GET /readyz` on the same server (the floor: a
   request that does one trivial query);
6. prints a summary with the target (every page p95 <= 150 ms).

It cleans up after itself: the server is stopped, the database dropped (unless --keep).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from common import VENV_BIN, Server, machine, say
from coursegate.console.rollup import ActivityRollup
from coursegate.db import Database
from coursegate.kit.clock import SystemClock

PG = "postgresql://postgres@127.0.0.1:5432"
NAME = "bench_console"
RAW = f"{PG}/{NAME}"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{NAME}"
TENANT = "bench"
TARGET_MS = 150.0

# A UUIDv7 for an instant, random below the milliseconds: the service's id shape.
UUID7 = """
CREATE FUNCTION pg_temp.uuid7_at(at timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT (lpad(to_hex(floor(extract(epoch FROM at) * 1000)::bigint), 12, '0') || '7'
          || substr(md5(random()::text), 1, 3) || to_hex(8 + floor(random() * 4)::int)
          || substr(md5(random()::text), 1, 15))::uuid
$$;
"""


def admin(statement: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(VENV_BIN / "coursegate"), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"coursegate {' '.join(args)}: {done.stderr}")
    return done.stdout


def load_history(args: argparse.Namespace, endpoint_id: str) -> dict[str, float]:
    """The bulk rows, each table in one statement; returns seconds per step."""
    n_people, n_completions, n_attempts = args.learners, args.completions, args.attempts
    per_person = max(n_completions // n_people, 1)
    messages = n_attempts // 5
    steps: dict[str, float] = {}
    with psycopg.connect(RAW, autocommit=True) as conn:
        conn.execute(UUID7)
        statements = {
            "learners": f"""
                CREATE TEMP TABLE p AS
                  SELECT g, pg_temp.uuid7_at(now() - interval '90 days' + g * interval '1 second') AS id
                  FROM generate_series(1, {n_people}) g;
                INSERT INTO people (tenant_id, id, name, email, created_at)
                  SELECT '{TENANT}', id, 'Learner ' || g, NULL, now() - interval '90 days' FROM p;
                INSERT INTO person_identifiers (tenant_id, namespace, value, person_id, created_at)
                  SELECT '{TENANT}', 'us_co_doc_id', 'S' || g, id, now() - interval '90 days' FROM p;
            """,
            "completions": f"""
                INSERT INTO completions (tenant_id, id, program_id, person_id, provider_id,
                    course_id, course_name, content_hours, completed_at, recorded_at, content_digest)
                  SELECT '{TENANT}', pg_temp.uuid7_at(t.at), 'prog', p.id, 'prov',
                         'course-' || (i / {n_people}), 'Course ' || (i / {n_people}), 65,
                         t.at, t.at, md5(i::text) || md5(i::text)
                  FROM generate_series(0, {n_completions - 1}) i
                  JOIN p ON p.g = (i % {n_people}) + 1
                  CROSS JOIN LATERAL (SELECT now() - (i::float8 / {n_completions}) * interval '60 days' AS at) t;
            """,
            "credits": f"""
                INSERT INTO credit_totals (tenant_id, program_id, person_id, hours_total, credits_total, updated_at)
                  SELECT '{TENANT}', 'prog', id, {per_person * 65}, {per_person * 65 // 600}, now() FROM p;
                INSERT INTO credits (tenant_id, program_id, person_id, sequence, id, completion_id, awarded_at)
                  SELECT '{TENANT}', 'prog', p.id, 1, pg_temp.uuid7_at(at), gen_random_uuid(), at
                  FROM p CROSS JOIN LATERAL (SELECT now() - (p.g::float8 / {n_people}) * interval '60 days' AS at) t
                  WHERE {per_person * 65 // 600} >= 1;
            """,
            "events and messages": f"""
                CREATE TEMP TABLE m AS
                  SELECT j, pg_temp.uuid7_at(at) AS event_id, pg_temp.uuid7_at(at) AS delivery_id, at
                  FROM generate_series(1, {messages}) j
                  CROSS JOIN LATERAL (SELECT now() - (j::float8 / {messages}) * interval '60 days' AS at) t;
                INSERT INTO events (tenant_id, id, type, occurred_at, data, routed_at)
                  SELECT '{TENANT}', event_id, 'completion.recorded', at, '{{}}'::jsonb, at FROM m;
                INSERT INTO deliveries (tenant_id, id, endpoint_id, event_id, origin, status, attempts,
                    next_attempt_at, last_attempt_at, enrichment, created_at)
                  SELECT '{TENANT}', delivery_id, '{endpoint_id}', event_id, 'event', 'delivered', 5,
                         at, at, NULL, at FROM m;
            """,
            "attempts": f"""
                INSERT INTO delivery_attempts (tenant_id, id, endpoint_id, delivery_id, event_id, attempt,
                    attempted_at, outcome, status_code, latency_ms, response_body, error_class)
                  SELECT '{TENANT}', pg_temp.uuid7_at(m.at + k * interval '1 second'), '{endpoint_id}',
                         m.delivery_id, m.event_id, k, m.at + k * interval '1 second',
                         CASE WHEN k = 5 THEN 'succeeded' ELSE 'failed' END,
                         CASE WHEN k = 5 THEN 200 ELSE 503 END, 40,
                         CASE WHEN k = 5 THEN 'ok' ELSE 'unavailable' END,
                         CASE WHEN k = 5 THEN NULL ELSE 'http_status' END
                  FROM m CROSS JOIN generate_series(1, 5) k;
            """,
            "backlog": f"""
                INSERT INTO events (tenant_id, id, type, occurred_at, data, routed_at)
                  SELECT '{TENANT}', event_id, 'completion.recorded', now(), '{{}}'::jsonb, now()
                  FROM (SELECT pg_temp.uuid7_at(now()) AS event_id FROM generate_series(1, 500)) b;
                INSERT INTO deliveries (tenant_id, id, endpoint_id, event_id, origin, status, attempts,
                    next_attempt_at, last_attempt_at, enrichment, created_at)
                  SELECT '{TENANT}', pg_temp.uuid7_at(now()), '{endpoint_id}', id, 'event', 'pending', 0,
                         now() - interval '3 minutes', NULL, NULL, now()
                  FROM events WHERE tenant_id = '{TENANT}' AND occurred_at > now() - interval '1 minute';
            """,
        }
        for label, sql in statements.items():
            started = time.perf_counter()
            conn.execute(sql)
            steps[label] = time.perf_counter() - started
            say(f"  loaded {label:<22} {steps[label]:7.1f} s")
        started = time.perf_counter()
        conn.execute("ANALYZE")
        steps["analyze"] = time.perf_counter() - started
    return steps


async def catch_up() -> tuple[int, float]:
    database = Database(URL, pool_size=2)
    try:
        rollup = ActivityRollup(database, SystemClock())
        counted = 0
        started = time.perf_counter()
        while (step := await rollup.step()) > 0:
            counted += step
        return counted, time.perf_counter() - started
    finally:
        await database.dispose()


def timed(client: httpx.Client, path: str, loads: int) -> tuple[float, float, int]:
    samples = []
    status = 0
    client.get(path)  # warm: the first load prepares statements
    for _ in range(loads):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        status = response.status_code
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))], status


def sign_in(client: httpx.Client, password: str) -> None:
    form = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    answer = client.post(
        "/console/login",
        data={
            "organisation": TENANT,
            "email": "admin@bench.example.org",
            "password": password,
            "csrf_token": token.group(1),
        },
    )
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in failed: {answer.status_code}")


def run(args: argparse.Namespace) -> int:
    say(f"machine: {machine()}")
    say(
        f"history: {args.completions:,} completions, {args.learners:,} learners, "
        f"{args.attempts:,} delivery attempts, one tenant, PostgreSQL"
    )
    home = Path(tempfile.mkdtemp(prefix="bench-console-"))
    env = {
        **os.environ,
        "COURSEGATE_ENV": "production",
        "COURSEGATE_DATABASE_URL": URL,
        "COURSEGATE_SECRET_KEY": "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg=",
        "COURSEGATE_VAR_DIR": str(home),
        "COURSEGATE_LOG_LEVEL": "WARNING",
        "COURSEGATE_ACCESS_LOG": "false",
        "COURSEGATE_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
    }
    cli(env, "db", "upgrade")
    key = json.loads(cli(env, "tenants", "create", TENANT, "--json"))["api_key"]
    password = json.loads(
        cli(
            env,
            "operators",
            "create",
            "admin@bench.example.org",
            "--tenant",
            TENANT,
            "--role",
            "admin",
            "--json",
        )
    )["password"]
    server = Server("api", [str(VENV_BIN / "coursegate"), "api"], env, home / "api.log")
    with server:
        server.start("/readyz")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as api:
            for path, body in (
                (
                    "/v1/programs",
                    {
                        "id": "prog",
                        "name": "Bench program",
                        "jurisdiction": "US_CO",
                        "hours_per_credit": "6",
                        "identifier_namespace": "us_co_doc_id",
                    },
                ),
                (
                    "/v1/providers",
                    {
                        "id": "prov",
                        "program_id": "prog",
                        "scheme": "hmac-authorization",
                        "keys": [{"key_id": "k1"}],
                    },
                ),
                ("/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}),
            ):
                made = api.post(path, json=body)
                if made.status_code != 201:
                    raise RuntimeError(f"{path}: {made.status_code} {made.text}")
            endpoint_id = made.json()["id"]
        say("loading the history:")
        load_history(args, endpoint_id)
        counted, seconds = asyncio.run(catch_up())
        say(
            f"  the Overview's counts caught up with {counted:,} rows in {seconds:.1f} s "
            f"({counted / max(seconds, 1e-9):,.0f} rows/s)"
        )
        with psycopg.connect(RAW) as conn:
            row = conn.execute(
                "SELECT id FROM people WHERE tenant_id = %s ORDER BY id LIMIT 1 OFFSET %s",
                (TENANT, args.learners // 2),
            ).fetchone()
            assert row is not None
            learner = row[0]
        pages = [
            ("GET /readyz (floor)", "/readyz"),
            ("Overview", "/console"),
            ("Learners: search by identifier", f"/console/learners?search=S{args.learners // 2}"),
            ("Learners: search by name", f"/console/learners?search=Learner%20{args.learners - 1}"),
            ("Learner", f"/console/learners/{learner}"),
            ("Learner statement CSV", f"/console/learners/{learner}/statement.csv"),
            ("Completions", "/console/completions"),
            ("Completions: audit by outcome", "/console/completions?outcome=parked"),
            ("Webhooks", "/console/webhooks"),
            ("Endpoint", f"/console/webhooks/{endpoint_id}"),
            ("Connectors", "/console/connectors"),
            ("Courses", "/console/courses"),
            ("Activity", "/console/activity"),
            ("Settings", "/console/settings"),
        ]
        with httpx.Client(base_url=server.url, timeout=60) as browser:
            sign_in(browser, password)
            say("")
            say(
                f"{'page (' + str(args.loads) + ' loads each)':<40} {'p50 ms':>8} {'p95 ms':>8}  status"
            )
            worst = 0.0
            for label, path in pages:
                p50, p95, status = timed(browser, path, args.loads)
                note = (
                    ""
                    if status == 200
                    else "  (not built yet)"
                    if status == 404
                    else f"  ({status})"
                )
                say(f"{label:<40} {p50:>8.1f} {p95:>8.1f}  {status}{note}")
                if status == 200 and label != "GET /readyz (floor)":
                    worst = max(worst, p95)
            say("")
            say(
                f"slowest page p95: {worst:.1f} ms (target <= {TARGET_MS:.0f} ms): "
                f"{'met' if worst <= TARGET_MS else 'NOT MET'}"
            )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--completions", type=int, default=1_000_000)
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--loads", type=int, default=50)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    admin(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{NAME}"')
    try:
        return run(args)
    finally:
        if not args.keep:
            admin(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
