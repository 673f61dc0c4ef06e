"""The partner-facing inbound endpoint, served straight from ASGI ahead of FastAPI's routing.

This one route carries the load (every completion every partner sends), and
FastAPI's per-request machinery (matching every route, building a request,
solving dependencies, rendering a response) was a measurable share of its CPU
(see docs/benchmarks.md). The FastAPI route stays registered: it documents the
endpoint in OpenAPI and serves it if this layer is not installed. Both call the
same `InboundGateway.handle`, so they answer alike.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from coursegate.completions.inbound import InboundGateway, signed_path
from coursegate.kit.errors import failure_of
from coursegate.kit.http import send_json


class InboundFastPath:
    def __init__(self, app: ASGIApp, route: APIRoute, state: Any) -> None:
        self.app = app
        self.route = route
        self.state = state
        """The application's state, where the gateway lives (read per request)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            self.route.path_regex.match(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if match is None:
            await self.app(scope, receive, send)
            return
        # What the metrics and the access log name the request by.
        scope["route"] = self.route
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        path = signed_path(scope)
        gateway: InboundGateway = self.state.inbound
        try:
            response = await gateway.handle(
                match["tenant_id"],
                match["provider_id"],
                method="POST",
                path=path,
                headers=Headers(scope=scope),
                body=body,
            )
        except Exception as exc:
            # Outside FastAPI's handlers: the same answer they would give (503 while the
            # database is down, 500 for a bug).
            error = failure_of(exc, "inbound")
            await send_json(send, error.status, error.body(), extra_headers=error.headers())
            return
        await send_json(send, response.status, response.body)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
