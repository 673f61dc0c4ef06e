"""Abusive clients against a real `coursegate serve`, over real loopback sockets.

The server runs with a 1-second request deadline and room for 16 connections part-way
through a request, so every case ends in about a second; `/healthz` is asked throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from coursegate.db import Database
from coursegate.kit.clock import FrozenClock
from coursegate.kit.jsonbody import MAX_JSON_DEPTH
from tests import servers
from tests.completions.conftest import PATH as INBOUND_PATH
from tests.completions.conftest import make_setup
from tests.conftest import create_tenant

TIMEOUT_S = 1.0
MAX_PENDING = 16
HEADER_LIMIT = 64 * 1024
# The deadline is kept to within a quarter of itself (the sweep), plus a loaded machine's
# scheduling.
LATEST_CLOSE_S = TIMEOUT_S * 1.25 + 2.0


def test_abusive_clients_against_a_real_server(tmp_path: Path, sqlite_template: Path) -> None:
    """One server for every case (a server start is the slow part); each case is a phase.

    `coursegate api` on a copy of the migrated SQLite file: the HTTP process of production,
    without the embedded server's migration and workers, which would only add start time.
    """
    (tmp_path / "var").mkdir()
    shutil.copy(sqlite_template, tmp_path / "var" / "coursegate.db")
    env = {
        "COURSEGATE_VAR_DIR": str(tmp_path / "var"),
        "COURSEGATE_DATABASE_URL": "",
        "COURSEGATE_HTTP_REQUEST_TIMEOUT_SECONDS": str(TIMEOUT_S),
        "COURSEGATE_HTTP_MAX_PENDING_REQUESTS": str(MAX_PENDING),
        "COURSEGATE_ACCESS_LOG": "false",
    }
    with servers.running(["api"], env, tmp_path / "api.log", cwd=tmp_path) as server:
        headers_over_64_kib_get_431_without_being_read_whole(server)
        a_request_that_does_not_arrive_whole_in_time_is_closed(server)
        slow_senders_are_bounded_and_others_are_served(server)
        api_key = asyncio.run(_tenant(tmp_path / "var" / "coursegate.db"))
        asyncio.run(deeply_nested_json_is_invalid_json_on_every_route(server, api_key))
    assert "Traceback" not in server.output()


async def _tenant(sqlite_file: Path) -> str:
    """A tenant made in the server's file, through the service the CLI uses."""
    database = Database(f"sqlite+aiosqlite:///{sqlite_file}", pool_size=1)
    try:
        return await create_tenant(database, FrozenClock(datetime.now(UTC)), "acme")
    finally:
        await database.dispose()


def _connect(server: servers.Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def _healthz(server: servers.Server) -> None:
    assert httpx.get(server.url + "/healthz", timeout=2).status_code == 200


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _read_until_closed(sock: socket.socket, within_s: float) -> bytes:
    """Everything the server sends until it closes; fails if it is still open after `within_s`."""
    sock.settimeout(within_s)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"still open after {within_s} s; got {received[:200]!r}") from None
    return received


def _body(response: bytes) -> Any:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


def headers_over_64_kib_get_431_without_being_read_whole(server: servers.Server) -> None:
    _healthz(server)
    before = _rss_kib(server.process.pid)
    # As in the report: eight connections, each sending a header of megabytes and never
    # finishing; the clients keep their ends open meanwhile.
    clients = [_connect(server) for _ in range(8)]
    for sock in clients:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        try:
            while sent < 4 * 1024 * 1024:
                sent += sock.send(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = _read_until_closed(sock, LATEST_CLOSE_S)
        assert response.startswith(b"HTTP/1.1 431 "), response[:100]
        assert b"connection: close" in response
        assert _body(response) == {
            "error": "PAYLOAD_TOO_LARGE",
            "message": "request headers over 64 KiB",
        }
        assert sent < 4 * 1024 * 1024  # the server stopped reading long before the end
    grown_kib = _rss_kib(server.process.pid) - before
    # Read whole, 8 times 4 MiB would have taken at least 32 MiB.
    assert grown_kib < 8 * 1024, f"the server grew by {grown_kib} KiB"
    for sock in clients:
        sock.close()

    # Headers just under the limit are still served.
    with _connect(server) as sock:
        filler = b"b" * (HEADER_LIMIT - 1024)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: " + filler + b"\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    _healthz(server)


def a_request_that_does_not_arrive_whole_in_time_is_closed(server: servers.Server) -> None:
    silent = _connect(server)  # connects and sends nothing
    half_headers = _connect(server)
    half_headers.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    no_body = _connect(server)  # an admin route, its announced body never sent
    no_body.sendall(
        b"POST /v1/programs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200\r\n\r\n"
    )
    half_body = _connect(server)  # the inbound fast path, half of its body sent
    half_body.sendall(
        b"POST " + INBOUND_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b'Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"person_id": '
    )
    started = time.monotonic()
    # A slow but timely client is served: its headers come in two parts 0.3 s apart.
    with _connect(server) as timely:
        timely.sendall(b"GET /healthz HTTP/1.1\r\n")
        time.sleep(0.3)
        _healthz(server)
        timely.sendall(b"Host: x\r\n\r\n")
        assert timely.recv(65536).startswith(b"HTTP/1.1 200 ")
    for sock in (silent, half_headers, no_body, half_body):
        assert _read_until_closed(sock, LATEST_CLOSE_S) == b""  # closed, nothing answered
        sock.close()
    elapsed = time.monotonic() - started
    assert TIMEOUT_S * 0.9 <= elapsed <= LATEST_CLOSE_S
    _healthz(server)
    metrics = httpx.get(server.url + "/metrics").text
    assert 'coursegate_http_connections_closed_total{reason="request_timeout"}' in metrics


def slow_senders_are_bounded_and_others_are_served(server: servers.Server) -> None:
    """200 clients each dribbling a header a byte at a time, as in the report (scaled to a
    byte every 0.1 s); /healthz is asked all along."""

    async def scenario() -> tuple[list[float], list[float]]:
        lifetimes: list[float] = []
        latencies: list[float] = []
        done = asyncio.Event()

        async def slow_sender() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            connected = time.monotonic()
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")

            async def dribble() -> None:
                while True:
                    await asyncio.sleep(0.1)
                    writer.write(b"s")

            dribbling = asyncio.create_task(dribble())
            with contextlib.suppress(ConnectionResetError):
                assert await asyncio.wait_for(reader.read(), LATEST_CLOSE_S) == b""
            lifetimes.append(time.monotonic() - connected)
            dribbling.cancel()
            writer.close()

        async def prober() -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=2) as client:
                while not done.is_set():
                    began = time.monotonic()
                    assert (await client.get("/healthz")).status_code == 200
                    latencies.append(time.monotonic() - began)
                    await asyncio.sleep(0.05)

        senders = [asyncio.create_task(slow_sender()) for _ in range(200)]
        await asyncio.sleep(0.2)  # they are connecting, and being evicted to make room
        probing = asyncio.create_task(prober())
        await asyncio.gather(*senders)
        done.set()
        await probing
        return lifetimes, latencies

    lifetimes, latencies = asyncio.run(scenario())
    assert len(lifetimes) == 200
    assert max(lifetimes) <= LATEST_CLOSE_S
    # At most the bounded few lived to the deadline; the others were closed to make room as
    # newer requests came, the probes' included (without the bound, all 200 would). Twice
    # the bound leaves room for a busy machine's connects arriving slower than evictions.
    long_lived = [t for t in lifetimes if t >= TIMEOUT_S * 0.9]
    assert len(long_lived) <= 2 * MAX_PENDING, sorted(lifetimes)[-40:]
    assert len(latencies) >= 5
    # Answered, and promptly for a machine that may be busy with other work.
    assert max(latencies) < 1.5, latencies
    _healthz(server)


async def deeply_nested_json_is_invalid_json_on_every_route(
    server: servers.Server, api_key: str
) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        setup = await make_setup(client, FrozenClock(datetime.now(UTC)), api_key)

        def program(name: bytes) -> bytes:
            return b'{"id": "p2", "jurisdiction": "US_CO", "name": ' + name + b"}"

        over = b"[" * (MAX_JSON_DEPTH) + b"]" * (MAX_JSON_DEPTH)  # the object makes one more
        at_limit = b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1)
        bracketed_name = json.dumps("[" * 100 + "{" * 100).encode()
        json_headers = {**setup.admin, "Content-Type": "application/json"}
        for body in (deep, program(deep), program(over)):
            refused = await client.post("/v1/programs", content=body, headers=json_headers)
            assert refused.status_code == 400
            assert refused.json()["error"] == "INVALID_JSON"
        # Unauthenticated, and a body FastAPI's parser itself gives up on (not UTF-8): the
        # same code, never a code SPEC §0 does not have.
        anonymous = await client.post(
            "/v1/programs", content=deep, headers={"Content-Type": "application/json"}
        )
        assert (anonymous.status_code, anonymous.json()["error"]) == (400, "INVALID_JSON")
        undecodable = await client.post(
            "/v1/programs", content=b'{"id": "\xff"}', headers=json_headers
        )
        assert (undecodable.status_code, undecodable.json()["error"]) == (400, "INVALID_JSON")
        # At the limit the JSON is read, and the field refused for what it is.
        validated = await client.post(
            "/v1/programs", content=program(at_limit), headers=json_headers
        )
        assert validated.status_code == 400
        assert validated.json()["error"] == "VALIDATION_ERROR"
        # Brackets inside strings are text.
        named = await client.post(
            "/v1/programs",
            content=b'{"id": "p3", "name": '
            + bracketed_name
            + b', "jurisdiction": "US_CO", "hours_per_credit": "6", '
            + b'"identifier_namespace": "us_co_doc_id"}',
            headers=json_headers,
        )
        assert named.status_code == 201, named.text

        # The batch route (1 MiB bodies), a course of this tenant or not.
        batch = await client.post(
            "/v1/courses/nowhere/enrollments",
            content=b'{"students": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
            headers=json_headers,
        )
        assert (batch.status_code, batch.json()["error"]) == (400, "INVALID_JSON")

        # The inbound fast path: the signature first (SPEC §2), then the JSON.
        unsigned = await client.post(
            INBOUND_PATH, content=deep, headers={"Content-Type": "application/json"}
        )
        assert (unsigned.status_code, unsigned.json()["error"]) == (401, "UNAUTHORIZED")
        for body in (deep, b'{"person_id": ' + over + b"}"):
            signed = await setup.send(body)
            assert (signed.status_code, signed.json()["error"]) == (400, "INVALID_JSON")
        accepted = await setup.send(setup.payload())
        assert accepted.status_code == 201, accepted.text
    _healthz(server)
