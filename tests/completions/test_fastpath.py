"""The inbound route is served by the ASGI fast path, and answers exactly as the FastAPI
route does (every other inbound test goes through the fast path too)."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY
from starlette.types import Receive, Scope, Send

from coursegate.app import inbound_route
from coursegate.completions.fastpath import InboundFastPath
from tests.completions.conftest import PATH, Setup


class Refuse:
    """The rest of the application: records that it was asked, answers 418."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.asked.append(f"{scope['method']} {scope['path']}")
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_the_fast_path_answers_inbound_posts_and_passes_everything_else_on(
    inbound: Setup, app: FastAPI
) -> None:
    rest = Refuse()
    fast = InboundFastPath(rest, route=inbound_route(), state=app.state)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fast), base_url="http://testserver"
    ) as http:
        body = json.dumps(inbound.payload(content_hours=6.25)).encode()
        accepted = await http.post(PATH, content=body, headers=inbound.signed(body))
        refused = await http.post(PATH, content=body, headers={"Content-Type": "application/json"})
        other = await http.get(PATH)
        elsewhere = await http.post("/v1/inbound/acme/edovo/other", content=b"{}")
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert accepted.headers["content-type"] == "application/json"
    assert (refused.status_code, refused.json()) == (401, {"error": "UNAUTHORIZED"})
    assert (other.status_code, elsewhere.status_code) == (418, 418)
    assert rest.asked == [f"GET {PATH}", "POST /v1/inbound/acme/edovo/other"]
    assert (await inbound.credits())["hours_total"] == "6.25"


async def test_requests_are_counted_under_the_route_template(inbound: Setup) -> None:
    labels = {
        "method": "POST",
        "route": "/v1/inbound/{tenant_id}/{provider_id}/completions",
        "status": "201",
    }
    before = REGISTRY.get_sample_value("coursegate_http_requests_total", labels) or 0.0
    response = await inbound.send(inbound.payload())
    assert response.status_code == 201
    assert REGISTRY.get_sample_value("coursegate_http_requests_total", labels) == before + 1
