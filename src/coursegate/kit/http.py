"""ASGI plumbing shared by every endpoint: the body-size limit, the JSON depth limit, metrics
and the access log."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

import structlog
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coursegate.kit.jsonbody import MAX_JSON_DEPTH, too_deep

log = structlog.get_logger("coursegate.http")

DEFAULT_BODY_LIMIT = 64 * 1024
BATCH_BODY_LIMIT = 1024 * 1024

HTTP_REQUESTS = Counter(
    "coursegate_http_requests_total",
    "HTTP requests by route template, method and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "coursegate_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class _BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body reader re-raises it instead of calling it a 400."""

    def __init__(self) -> None:
        super().__init__(status_code=413)


async def send_json(
    send: Send,
    status: int,
    body: dict[str, Any],
    *,
    close: bool = False,
    extra_headers: dict[str, str] | None = None,
) -> None:
    """A whole JSON response, written straight to ASGI (compact, as FastAPI renders it)."""
    payload = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    for name, value in (extra_headers or {}).items():
        headers.append((name.lower().encode(), value.encode()))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """Refuse bodies over the limit with 413 before anything reads them.

    Checked on the declared length and again on the bytes that arrive, since a
    chunked body declares none. Batch routes (matched by pattern) get the larger
    limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        default_limit: int = DEFAULT_BODY_LIMIT,
        batch_limit: int = BATCH_BODY_LIMIT,
        batch_routes: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.batch_limit = batch_limit
        self.batch_routes = [re.compile(p) for p in batch_routes]

    def limit_for(self, path: str) -> int:
        if any(p.fullmatch(path) for p in self.batch_routes):
            return self.batch_limit
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        too_large = {"error": "PAYLOAD_TOO_LARGE"}
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_json(
                        send,
                        400,
                        {
                            "error": "VALIDATION_ERROR",
                            "details": [{"field": "Content-Length", "constraint": "invalid"}],
                        },
                        close=True,
                    )
                    return
                if declared > limit:
                    await send_json(send, 413, too_large, close=True)
                    return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await send_json(send, 413, too_large, close=True)


class JsonDepthMiddleware:
    """Refuse a JSON body nested deeper than `MAX_JSON_DEPTH` with 400 `INVALID_JSON` before
    FastAPI parses it (see kit/jsonbody.py).

    FastAPI reads the whole body before it parses it, so reading it here first
    costs a copy, not memory the request would not take anyway (the body limit,
    outside this, has bounded it). The inbound route does not pass here: its
    signature is checked before its JSON (SPEC §2), by the fast path.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _declares_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if too_deep(body):
            await send_json(
                send,
                400,
                {
                    "error": "INVALID_JSON",
                    "message": f"the body nests deeper than {MAX_JSON_DEPTH} levels",
                },
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _declares_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or (
                media.startswith(b"application/") and media.endswith(b"+json")
            )
    return False


class ObservabilityMiddleware:
    """Count and time every request by route template, and write one access-log line.

    The route template (not the raw path) keeps metric cardinality bounded and
    keeps ids and query strings, which may carry tokens, out of the log.
    """

    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_LATENCY.labels(method, template).observe(elapsed)
            if self.access_log:
                log.info(
                    "request",
                    method=method,
                    route=template,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
