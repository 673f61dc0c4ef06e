"""The forgery guard at send time, and learning-time enrichment as receivers see it."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from prometheus_client import REGISTRY
from sqlalchemy import update

from coursegate.models import WebhookEndpoint
from coursegate.webhooks.dispatcher import DispatchConfig
from coursegate.webhooks.enrichment import Enricher
from coursegate.webhooks.flags import EnrichmentFlags
from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Reply

COMPLETION = {
    "completion_id": "0190a6c4-0000-7000-8000-000000000001",
    "program_id": "co",
    "provider_id": "tablets",
    "person": {"id": "p1", "identifiers": [{"namespace": "us_co_doc_id", "value": "123"}]},
    "course_id": "math-101",
    "course_name": "Math",
    "content_hours": "1.50",
    "completed_at": "2026-06-10T12:00:00.000Z",
}


class PinnedResolver(AbstractResolver):
    """A name server that says every name is 127.0.0.1, like a hostile DNS record would."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


async def test_a_name_resolving_to_loopback_is_refused_at_send_time(hooks: Hooks) -> None:
    response = await hooks.client.post(
        "/v1/webhook-endpoints",
        headers=hooks.auth,
        json={
            "url": f"http://receiver.example.test:{hooks.receiver.port}/hook",
            "event_types": ["*"],
        },
    )
    assert response.status_code == 201, response.text
    endpoint_id = response.json()["id"]
    await hooks.emit()
    hooks.config = DispatchConfig(timeout_seconds=2.0, allow_private=False)
    hooks.resolver = PinnedResolver()
    await hooks.pump()

    assert hooks.receiver.received == [], "the request never left"
    attempts = await hooks.client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/attempts", headers=hooks.auth
    )
    (attempt,) = attempts.json()["data"]
    assert (attempt["outcome"], attempt["error_class"]) == ("failed", "forbidden_target")

    # Allowed by configuration, the same name reaches the receiver.
    hooks.config = DispatchConfig(timeout_seconds=2.0, allow_private=True)
    hooks.clock.advance(timedelta(seconds=7))
    await hooks.pump()
    assert len(hooks.receiver.received) == 1


async def test_an_address_literal_is_refused_at_send_time(hooks: Hooks) -> None:
    # Created while private targets were allowed; the setting changed since.
    endpoint_id, _ = await hooks.create_endpoint()
    await hooks.emit()
    hooks.config = DispatchConfig(timeout_seconds=2.0, allow_private=False)
    await hooks.pump()
    assert hooks.receiver.received == []
    attempts = await hooks.client.get(
        f"/v1/webhook-endpoints/{endpoint_id}/attempts", headers=hooks.auth
    )
    assert attempts.json()["data"][0]["error_class"] == "forbidden_target"


class Source:
    """A learning-time source that answers, fails or hangs, and counts its calls."""

    def __init__(self, answer: int | None = 5400, *, fail: bool = False, delay: float = 0.0):
        self.answer = answer
        self.fail = fail
        self.delay = delay
        self.calls = 0

    async def seconds(self, tenant_id: str, data: Mapping[str, Any]) -> int | None:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("warehouse unreachable")
        return self.answer


def enrich(hooks: Hooks, source: Source, timeout: float = 1.0) -> None:
    hooks.enricher = Enricher(source, EnrichmentFlags(), timeout_seconds=timeout)


def failures() -> float:
    return REGISTRY.get_sample_value("coursegate_enrichment_total", {"result": "failure"}) or 0.0


ON = {"learning_time": {"enabled": True}}


async def test_enrichment_on_adds_learning_time_and_every_retry_sends_the_same_body(
    hooks: Hooks,
) -> None:
    source = Source(5400)
    enrich(hooks, source)
    hooks.receiver.script("/on", Reply(500))
    await hooks.create_endpoint("/on", ["completion.recorded"], enrichments=ON)
    await hooks.create_endpoint("/off", ["completion.recorded"])
    await hooks.emit("completion.recorded", COMPLETION)
    await hooks.pump()
    source.answer = 9999  # the warehouse changes its mind; the message does not
    hooks.clock.advance(timedelta(seconds=7))
    await hooks.pump()

    first, retry = hooks.receiver.at("/on")
    assert first.json["data"] == {**COMPLETION, "learning_time": 5400}
    assert retry.body == first.body
    assert source.calls == 1, "computed once per message, at its first attempt"
    (off,) = hooks.receiver.at("/off")
    assert off.json["data"] == COMPLETION


async def test_enrichment_is_only_for_completion_recorded(hooks: Hooks) -> None:
    source = Source(5400)
    enrich(hooks, source)
    await hooks.create_endpoint(enrichments=ON)
    await hooks.emit("credit.earned", {"credit_id": "c"})
    await hooks.pump()
    assert hooks.receiver.received[0].json["data"] == {"credit_id": "c"}
    assert source.calls == 0


async def test_a_failing_source_sends_without_the_field_and_counts_it(hooks: Hooks) -> None:
    enrich(hooks, Source(fail=True))
    await hooks.create_endpoint(enrichments=ON)
    before = failures()
    await hooks.emit("completion.recorded", COMPLETION)
    await hooks.pump()
    assert hooks.receiver.received[0].json["data"] == COMPLETION
    assert failures() == before + 1


async def test_a_slow_source_does_not_hold_the_delivery_back(hooks: Hooks) -> None:
    enrich(hooks, Source(5400, delay=5.0), timeout=0.2)
    await hooks.create_endpoint(enrichments=ON)
    before = failures()
    await hooks.emit("completion.recorded", COMPLETION)
    started = time.perf_counter()
    await hooks.pump()
    assert time.perf_counter() - started < 2.0
    assert hooks.receiver.received[0].json["data"] == COMPLETION
    assert failures() == before + 1


async def test_rollout_percent_zero_is_off(hooks: Hooks) -> None:
    source = Source(5400)
    enrich(hooks, source)
    endpoint_id, _ = await hooks.create_endpoint(
        enrichments={"learning_time": {"enabled": True, "rollout_percent": 0}}
    )
    await hooks.emit("completion.recorded", COMPLETION)
    await hooks.pump()
    assert "learning_time" not in hooks.receiver.received[0].json["data"]
    # Switching it on applies to new messages.
    async with hooks.database.transaction() as session:
        await session.execute(update(WebhookEndpoint).values(enrichments=ON))
    await hooks.emit("completion.recorded", COMPLETION)
    await hooks.pump()
    assert hooks.receiver.received[1].json["data"]["learning_time"] == 5400
    assert endpoint_id
