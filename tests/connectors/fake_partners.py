"""A fake DataPass partner served over real HTTP on loopback, for the pull connector's tests.

It runs uvicorn in a background thread with its own event loop, so sync tests, async tests
and a `coursegate` subprocess all reach it the same way: through a socket, with the real
OAuth2 client and HTTP stack. Scripted faults (status, Retry-After, delay) and a partner that
breaks mid-pagination let tests drive the connector's error handling without mocks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import re
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from types import TracebackType
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, unquote_plus

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

Route = Literal["token", "list"]
ENTRY_BASE: Final = datetime(2026, 6, 1, 9, 0, 0, tzinfo=UTC)
"""`datapass_entry(n)` is validated at this instant plus n minutes."""
_FORM: Final = "application/x-www-form-urlencoded"
_INTEGER: Final = re.compile(r"[0-9]{1,9}")
_ENTRY_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://datapass.example/fake")


@dataclass
class Fault:
    """One scripted misbehaviour: the next request to a route gets this instead of its reply."""

    status: int = 500
    retry_after: str | None = None
    delay: float = 0.0
    """Seconds to wait before answering, to provoke client timeouts."""
    body: str = '{"error": "fault"}'


@dataclass
class Recorded:
    """A request as the fake saw it; `status` is 0 until it is answered."""

    route: Route
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0


class DataPassFake:
    """The DataPass API as the connector sees it: a token endpoint and a paged list.

    Tests change `entries`, `faults`, `fail_from_offset` or revoke tokens at any time; the
    server thread reads them on every request.
    """

    def __init__(self) -> None:
        self.client_id = "coursegate"
        self.client_secret = secrets.token_urlsafe(32)
        self.token_lifetime = 3600
        self.entries: list[dict[str, Any]] = []
        self.faults: dict[str, deque[Fault]] = {"token": deque(), "list": deque()}
        self.fail_from_offset: int | None = None
        self.requests: list[Recorded] = []
        self.tokens_issued: list[str] = []
        self.port = 0
        self._valid_tokens: set[str] = set()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._crash: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.app = self._build_app()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/oauth/token"

    @property
    def api_base_url(self) -> str:
        return f"{self.base_url}/api"

    def start(self, timeout_s: float = 10.0) -> None:
        """Serves in a daemon thread; returns once the port answers HTTP."""
        if self._thread is not None:
            raise RuntimeError("the fake is already running")
        # Bound here and handed to uvicorn: the port is known at once and cannot be taken
        # by someone else between choosing it and listening on it.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            loop="asyncio",
            http="h11",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._loop = self._wake = None
        self._crash = None
        self._thread = threading.Thread(
            target=self._serve, args=(server, sock), name=f"datapass-fake-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._crash is not None or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the fake partner did not start: {self._crash!r}")
            if server.started:
                try:
                    httpx.get(f"{self.base_url}/", timeout=1.0)
                except httpx.HTTPError:
                    pass
                else:
                    return
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"the fake partner did not answer within {timeout_s} s")

    def stop(self) -> None:
        """Stops serving; requests still delayed by a fault are cut short."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wake.set)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout=5.0)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> DataPassFake:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported by start()
            self._crash = exc

    # -- behaviour -------------------------------------------------------------------------

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working: the next list call answers 401."""
        self._valid_tokens.clear()

    def at(self, route: Route) -> list[Recorded]:
        return [r for r in self.requests if r.route == route]

    def _build_app(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        app.add_api_route("/oauth/token", self._token, methods=["POST"])
        app.add_api_route("/api/authorization_requests", self._list, methods=["GET"])
        return app

    async def _arrive(self, route: Route, request: Request) -> tuple[Recorded, Response | None]:
        recorded = Recorded(
            route=route,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
        )
        self.requests.append(recorded)
        queue = self.faults.get(route)
        if not queue:
            return recorded, None
        fault = queue.popleft()
        await self._sleep(fault.delay)
        headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
        reply = Response(
            content=fault.body,
            status_code=fault.status,
            headers=headers,
            media_type="application/json",
        )
        return recorded, reply

    async def _sleep(self, seconds: float) -> None:
        # Cut short by stop(), which need not wait for a long scripted delay.
        if self._wake is None:
            self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _token(self, request: Request) -> Response:
        recorded, reply = await self._arrive("token", request)
        if reply is None:
            reply = await self._issue(request)
        recorded.status = reply.status_code
        return reply

    async def _issue(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != _FORM:
            return _error(400, "invalid_request")
        try:
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            return _error(400, "invalid_request")
        if form.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type")
        basic = _basic_credentials(request.headers.get("authorization"))
        client_id, client_secret = basic or (form.get("client_id"), form.get("client_secret"))
        if not (
            client_id is not None
            and client_secret is not None
            and secrets.compare_digest(client_id.encode(), self.client_id.encode())
            and secrets.compare_digest(client_secret.encode(), self.client_secret.encode())
        ):
            return _error(401, "invalid_client", {"WWW-Authenticate": 'Basic realm="datapass"'})
        token = secrets.token_urlsafe(32)
        self.tokens_issued.append(token)
        self._valid_tokens.add(token)
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime},
            headers={"Cache-Control": "no-store"},
        )

    async def _list(self, request: Request) -> Response:
        recorded, reply = await self._arrive("list", request)
        if reply is None:
            reply = self._page(request)
        recorded.status = reply.status_code
        return reply

    def _page(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self._valid_tokens:
            return _error(
                401, "invalid_token", {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        query = request.query_params
        if query.get("state") != "validated":
            return _error(400, "invalid_state")
        limit = _integer(query.get("limit"), default=100)
        offset = _integer(query.get("offset"), default=0)
        if limit is None or not 1 <= limit <= 1000:
            return _error(400, "invalid_limit")
        if offset is None:
            return _error(400, "invalid_offset")
        if self.fail_from_offset is not None and offset >= self.fail_from_offset:
            return _error(500, "internal_server_error")
        validated = [e for e in self.entries if e.get("state") == "validated"]
        return JSONResponse(validated[offset : offset + limit])


def _error(status: int, error: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _integer(value: str | None, *, default: int) -> int | None:
    """A non-negative decimal integer, `default` when absent, None when malformed."""
    if value is None:
        return default
    return int(value) if _INTEGER.fullmatch(value) else None


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client_id, client_secret) from `Basic` auth, form-decoded as RFC 6749 §2.3.1 says."""
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    client_id, _, client_secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(client_secret)


# -- entries ---------------------------------------------------------------------------------


class _Default(Enum):
    VALUE = "default"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def datapass_entry(
    n: int,
    *,
    type_: str = "api_particulier_cnous",
    validated_at: datetime | Literal[_Default.VALUE] | None = _Default.VALUE,
    public_id: str | None = None,
    state: str = "validated",
) -> dict[str, Any]:
    """An authorization request shaped as DataPass serves it.

    `validated_at` defaults to `ENTRY_BASE` plus n minutes; None gives an entry whose
    `last_validated_at` is present but null.
    """
    if validated_at is _Default.VALUE:
        validated_at = ENTRY_BASE + timedelta(minutes=n)
    if validated_at is not None and validated_at.tzinfo is None:
        raise ValueError("validated_at must be timezone-aware")
    anchor = validated_at or ENTRY_BASE + timedelta(minutes=n)
    created_at = anchor - timedelta(days=3)
    submitted_at = anchor - timedelta(days=1)
    return {
        "id": n,
        "public_id": public_id or str(uuid.uuid5(_ENTRY_NAMESPACE, f"authorization-request-{n}")),
        "type": type_,
        "state": state,
        "form_uid": f"{type_.replace('_', '-')}-etudiant-boursier",
        "data": {
            "intitule": f"Tarif social de la formation {n}",
            "scopes": ["cnous_statut_boursier", "cnous_echelon_bourse"],
            "niveau_bourse_min": n % 8,
        },
        "created_at": _iso(created_at),
        "last_submitted_at": _iso(submitted_at),
        "last_validated_at": None if validated_at is None else _iso(validated_at),
        "habilitations": [
            {
                "id": 10_000 + n,
                "slug": f"{n}-habilitation",
                "state": "active" if state == "validated" else "inactive",
                "created_at": _iso(anchor),
            }
        ],
        "organisation": {
            "id": 500 + n,
            "siret": f"{13002526500000 + n:014d}",
            "name": f"Université de test n°{n}",
        },
    }
