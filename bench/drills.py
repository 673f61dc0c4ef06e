"""Kill drills: load on real processes while random ones are SIGKILLed and restarted; then
the invariants, printed as counts. Exits 1 if any fails.

Shapes: `sqlite` (one `coursegate serve` on a SQLite file) and `postgres` (`api` x2 +
`worker` x2 on a database of its own on the local server, dropped afterwards). The load:
signed completions from a partner (each resent until acknowledged, as a partner would),
delivered as webhooks to a receiver that fails ~10 % of first receipts.

    .venv/bin/python bench/drills.py --shape sqlite --duration 180 --kills 50
    .venv/bin/python bench/drills.py --shape postgres --duration 180 --kills 50

The test suite runs a short version of the same drill (tests/test_drills.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from aiohttp import web

from common import VENV_BIN, Server, coursegate, free_port, machine, say
from coursegate.kit.signing import hmac_authorization_header

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
TENANT = "drill"
PROGRAM = "drill"
PROVIDER = "tablet"
KEY_ID = "k1"
NAMESPACE = "doc"
PEOPLE = 12
INBOUND_PATH = f"/v1/inbound/{TENANT}/{PROVIDER}/completions"
SENDERS = 4
FAIL_SHARE = 0.10
SETTLE_S = 180.0
MIN_UP_S = 2.0
SHAPES: dict[str, list[tuple[str, str]]] = {
    "sqlite": [("serve", "serve")],
    "postgres": [
        ("api-1", "api"),
        ("api-2", "api"),
        ("worker-1", "worker"),
        ("worker-2", "worker"),
    ],
}


# --- the receiver -----------------------------------------------------------------------------


class Receiver:
    """Webhook receiver on loopback, in a thread of its own: answers 500 to the first receipt
    of ~10 % of messages (chosen by their webhook-id) and 200 otherwise; counts 200s per id."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted: Counter[str] = Counter()
        self.refused = 0
        self._failed: set[str] = set()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _hook(self, request: web.Request) -> web.Response:
        await request.read()
        msg_id = request.headers.get("webhook-id", "")
        with self._lock:
            first = msg_id not in self.accepted and msg_id not in self._failed
            if first and zlib.crc32(msg_id.encode()) % 100 < FAIL_SHARE * 100:
                self._failed.add(msg_id)
                self.refused += 1
                return web.Response(status=500, text="drill: failing once")
            self.accepted[msg_id] += 1
        return web.Response(text="ok")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def __enter__(self) -> Receiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def delivered(self) -> set[str]:
        with self._lock:
            return set(self.accepted)


# --- the processes ----------------------------------------------------------------------------


class Fleet:
    """The shape's processes; `kill_one` SIGKILLs a random one and starts it again."""

    def __init__(self, shape: str, env: dict[str, str], logs: Path, rng: random.Random) -> None:
        self.env, self.logs, self.rng = env, logs, rng
        self.roles = SHAPES[shape]
        self.servers: dict[str, Server] = {}
        self.kills: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _start(self, name: str, command: str) -> Server:
        log = self.logs / f"{name}-{self.kills[name]}.log"
        server = Server(name, [str(VENV_BIN / "coursegate"), command], self.env, log)
        server.start("/healthz")
        return server

    def start(self) -> None:
        for name, command in self.roles:
            self.servers[name] = self._start(name, command)

    def api_urls(self) -> list[str]:
        with self._lock:
            return [s.url for n, s in self.servers.items() if not n.startswith("worker")]

    def kill_one(self) -> str:
        name, command = self.rng.choice(self.roles)
        with self._lock:
            victim = self.servers[name]
        assert victim.process is not None
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(30)
        victim.stop()
        self.kills[name] += 1
        replacement = self._start(name, command)
        with self._lock:
            self.servers[name] = replacement
        return name

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


# --- the partner's load -----------------------------------------------------------------------


@dataclass
class Ledger:
    """What the partner sent and what was acknowledged, in hundredths of an hour."""

    acknowledged: dict[str, tuple[str, int]] = field(default_factory=dict)
    """course id -> (person value, hundredths)."""
    retries: int = 0
    retry_reasons: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def completion_body(person: str, course: str, hundredths: int) -> bytes:
    return (
        f'{{"person_id": "{person}", "state_code": "US_CO", "course_id": "{course}", '
        f'"course_name": "Drill course", "content_hours": {hundredths // 100}.{hundredths % 100:02d}, '
        f'"completed_at": "2026-06-10T10:00:00Z"}}'
    ).encode()


def send_until_acknowledged(
    fleet: Fleet, secret: str, ledger: Ledger, body: bytes, course: str, value: tuple[str, int]
) -> None:
    """A partner's retry loop: the same completion until some process answers it."""
    reason = ""
    while True:
        urls = fleet.api_urls()
        url = random.choice(urls) + INBOUND_PATH
        header = hmac_authorization_header(
            KEY_ID, secret, "POST", INBOUND_PATH, int(time.time()), body
        )
        try:
            response = httpx.post(
                url,
                content=body,
                headers={"Authorization": header, "Content-Type": "application/json"},
                timeout=30,
            )
        except httpx.HTTPError as exc:
            response = None
            reason = type(exc).__name__
        if response is not None and response.status_code < 300:
            with ledger.lock:
                ledger.acknowledged[course] = value
            return
        if response is not None and response.status_code < 500 and response.status_code != 429:
            with ledger.lock:
                ledger.refused.append(f"{response.status_code} {response.text[:200]}")
            return
        with ledger.lock:
            ledger.retries += 1
            ledger.retry_reasons[
                reason if response is None else f"{response.status_code} {response.text[:80]}"
            ] += 1
        time.sleep(0.2)


def partner(fleet: Fleet, secret: str, ledger: Ledger, stop: threading.Event, n: int) -> None:
    rng = random.Random(n)
    sent = 0
    while not stop.is_set():
        person = f"p{rng.randrange(PEOPLE)}"
        course = f"c-{n}-{sent}"
        hundredths = rng.randint(50, 950)
        body = completion_body(person, course, hundredths)
        send_until_acknowledged(fleet, secret, ledger, body, course, (person, hundredths))
        sent += 1


# --- setup ------------------------------------------------------------------------------------


def set_up(
    api_url: str, env: dict[str, str], receiver: Receiver
) -> tuple[str, str, dict[str, str]]:
    """Tenant, program, provider, people and the receiver's endpoint: (api key, provider
    secret, person value -> id)."""
    line = coursegate(env, "tenants", "create", TENANT, "--json").strip().splitlines()[-1]
    api_key: str = json.loads(line)["api_key"]
    auth = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=api_url, headers=auth, timeout=30) as http:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = http.post(path, json=body)
            if response.status_code != 201:
                raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
            data: dict[str, Any] = response.json()
            return data

        post(
            "/v1/programs",
            {
                "id": PROGRAM,
                "name": "Drill program",
                "jurisdiction": "US_CO",
                "hours_per_credit": "6",
                "identifier_namespace": NAMESPACE,
            },
        )
        provider = post(
            "/v1/providers",
            {
                "id": PROVIDER,
                "program_id": PROGRAM,
                "scheme": "hmac-authorization",
                "keys": [{"key_id": KEY_ID}],
            },
        )
        people = {
            f"p{i}": post(
                "/v1/people", {"identifiers": [{"namespace": NAMESPACE, "value": f"p{i}"}]}
            )["id"]
            for i in range(PEOPLE)
        }
        post("/v1/webhook-endpoints", {"url": receiver.url, "event_types": ["*"]})
    secret: str = provider["keys"][0]["secret"]
    return api_key, secret, people


# --- the invariants ---------------------------------------------------------------------------


@dataclass
class Report:
    shape: str
    seconds: float
    kills: dict[str, int]
    counts: dict[str, Any]
    failures: list[str]

    def lines(self) -> list[str]:
        kills = ", ".join(f"{k} {v}" for k, v in sorted(self.kills.items()))
        out = [
            f"shape {self.shape}: {sum(self.kills.values())} kills ({kills}) in {self.seconds:.0f} s"
        ]
        out += [f"  {k}: {v}" for k, v in self.counts.items()]
        out += [f"  FAILED: {f}" for f in self.failures] or ["  every invariant holds"]
        return out


class Store:
    """Read-only queries of the drill's database, on either engine."""

    def __init__(self, url: str) -> None:
        self.sqlite = url.startswith("sqlite")
        self.url = url

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.sqlite:
            path = self.url.split("///", 1)[1]
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
                params = (TENANT,) if "%(t)s" in sql else ()
                return conn.execute(sql.replace("%(t)s", "?"), params).fetchall()
        with psycopg.connect(self.url.replace("+asyncpg", "").replace("+psycopg", "")) as conn:
            return conn.execute(sql, {"t": TENANT}).fetchall()  # type: ignore[arg-type]


def _uuid(value: Any) -> str:
    """SQLite holds a UUID as 32 hex digits, PostgreSQL as a uuid."""
    return str(uuid.UUID(str(value)))


def unfinished_deliveries(store: Store) -> int:
    return int(
        store.rows(
            "SELECT count(*) FROM deliveries WHERE tenant_id = %(t)s AND status <> 'delivered'"
        )[0][0]
    ) + int(
        store.rows("SELECT count(*) FROM events WHERE tenant_id = %(t)s AND routed_at IS NULL")[0][
            0
        ]
    )


def check(
    store: Store, ledger: Ledger, receiver: Receiver, people: dict[str, str]
) -> tuple[dict[str, Any], list[str]]:
    failures: list[str] = []
    stored = Counter(
        dict(
            store.rows(
                "SELECT course_id, count(*) FROM completions WHERE tenant_id = %(t)s GROUP BY course_id"
            )
        )
    )
    acknowledged = set(ledger.acknowledged)
    twice = sum(1 for n in stored.values() if n > 1)
    missing = len(acknowledged - set(stored))
    unasked = len(set(stored) - acknowledged)
    if twice or missing or unasked or ledger.refused:
        failures.append(
            f"completions: {missing} acknowledged not stored, {twice} stored twice, "
            f"{unasked} stored but never acknowledged, {len(ledger.refused)} refused "
            f"{ledger.refused[:3]}"
        )

    expected: Counter[str] = Counter()
    for person, hundredths in ledger.acknowledged.values():
        expected[_uuid(people[person])] += hundredths
    totals = {
        _uuid(pid): (int(h), int(c))
        for pid, h, c in store.rows(
            "SELECT person_id, hours_total, credits_total FROM credit_totals WHERE tenant_id = %(t)s"
        )
    }
    credit_rows = Counter(
        {
            _uuid(pid): int(n)
            for pid, n in store.rows(
                "SELECT person_id, count(*) FROM credits WHERE tenant_id = %(t)s GROUP BY person_id"
            )
        }
    )
    wrong = [
        pid
        for pid in set(expected) | set(totals)
        if totals.get(pid, (0, 0)) != (expected[pid], expected[pid] // 600)
        or credit_rows[pid] != expected[pid] // 600
    ]
    if wrong:
        failures.append(f"credits: {len(wrong)} people whose hours or credits are not exact")

    events = {_uuid(r[0]) for r in store.rows("SELECT id FROM events WHERE tenant_id = %(t)s")}
    delivered = receiver.delivered()
    undelivered = len(events - delivered)
    if undelivered or unfinished_deliveries(store):
        failures.append(f"webhooks: {undelivered} events never delivered")
    outcomes = Counter(
        dict(
            store.rows(
                "SELECT outcome, count(*) FROM delivery_attempts WHERE tenant_id = %(t)s GROUP BY outcome"
            )
        )
    )
    integrity = "n/a"
    if store.sqlite:
        integrity = str(store.rows("PRAGMA integrity_check")[0][0])
        if integrity != "ok":
            failures.append(f"sqlite integrity_check: {integrity}")
    counts: dict[str, Any] = {
        "completions acknowledged": len(acknowledged),
        "completions stored": sum(stored.values()),
        "completions stored twice / missing / unacknowledged": f"{twice} / {missing} / {unasked}",
        "partner retries (no answer or 5xx)": ledger.retries,
        "retried because": dict(ledger.retry_reasons.most_common(3)),
        "people with exact hours and credits": f"{len(set(expected) | set(totals)) - len(wrong)} of {len(set(expected) | set(totals))}",
        "credits awarded": sum(credit_rows.values()),
        "events": len(events),
        "events delivered at least once": len(events & delivered),
        "duplicate deliveries": sum(receiver.accepted.values()) - len(delivered),
        "receiver 500s (once per message, on purpose)": receiver.refused,
        "attempts by outcome": dict(sorted(outcomes.items())),
        "sqlite integrity_check": integrity,
    }
    return counts, failures


# --- the drill --------------------------------------------------------------------------------


def pg_admin(*statements: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def run(shape: str, duration_s: float, kills: int, workdir: Path, seed: int = 1) -> Report:
    """The drill on one shape: `kills` SIGKILLs spread over at least `duration_s`."""
    rng = random.Random(seed)
    database = f"drills_{uuid.uuid4().hex[:12]}"
    if shape == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'drill.db'}"
    else:
        pg_admin(f'CREATE DATABASE "{database}"')
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
    env = {
        **os.environ,
        "COURSEGATE_DATABASE_URL": url,
        "COURSEGATE_VAR_DIR": str(workdir / "var"),
        "COURSEGATE_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
        "COURSEGATE_WEBHOOK_TIMEOUT_SECONDS": "2",
        "COURSEGATE_DISPATCH_POLL_SECONDS": "0.2",
        "COURSEGATE_LOG_LEVEL": "WARNING",
    }
    ledger = Ledger()
    stop = threading.Event()
    fleet = Fleet(shape, env, workdir, rng)
    started = time.monotonic()
    try:
        coursegate(env, "db", "upgrade")
        with Receiver() as receiver:
            fleet.start()
            _, secret, people = set_up(fleet.api_urls()[0], env, receiver)
            senders = [
                threading.Thread(target=partner, args=(fleet, secret, ledger, stop, n))
                for n in range(SENDERS)
            ]
            for t in senders:
                t.start()
            try:
                loaded = ready = time.monotonic()
                for k in range(kills):
                    due = loaded + duration_s * (k + 1) / (kills + 1)
                    # Some load between kills, however slow the restarts: a shape that is
                    # always restarting would take no completions at all.
                    time.sleep(
                        max(0.0, due - time.monotonic(), ready + MIN_UP_S - time.monotonic())
                    )
                    fleet.kill_one()
                    ready = time.monotonic()
                end = max(loaded + duration_s, ready + MIN_UP_S)
                time.sleep(max(0.0, end - time.monotonic()))
            finally:
                stop.set()
                for t in senders:
                    t.join()
            store = Store(url.replace("+aiosqlite", ""))
            deadline = time.monotonic() + SETTLE_S
            while unfinished_deliveries(store) and time.monotonic() < deadline:
                time.sleep(0.5)
            fleet.stop()
            counts, failures = check(store, ledger, receiver, people)
    finally:
        stop.set()
        fleet.stop()
        if shape != "sqlite":
            pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    return Report(shape, time.monotonic() - started, dict(fleet.kills), counts, failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shape", choices=[*SHAPES, "both"], default="both")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs per shape")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    say(f"machine: {machine()}")
    failed = False
    for shape in SHAPES if args.shape == "both" else [args.shape]:
        with tempfile.TemporaryDirectory(prefix="drill-") as tmp:
            report = run(shape, args.duration, args.kills, Path(tmp), args.seed)
        for line in report.lines():
            say(line)
        failed = failed or bool(report.failures)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
