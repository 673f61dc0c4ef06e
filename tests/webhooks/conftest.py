"""Fixtures of the outbound-webhook tests: a real receiver on loopback, and the
worker's own router and dispatcher driven one pass at a time."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.abc import AbstractResolver
from sqlalchemy import select

from coursegate.config import Settings
from coursegate.db import Database
from coursegate.events.outbox import NewEvent, record_events
from coursegate.kit.clock import FrozenClock
from coursegate.kit.secrets import SecretBox
from coursegate.models import Delivery, Event, WebhookEndpoint
from coursegate.webhooks.dispatcher import DispatchConfig, Dispatcher
from coursegate.webhooks.enrichment import Enricher
from coursegate.webhooks.routing import Router
from tests.conftest import bearer
from tests.webhooks.receiver import Receiver


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    # The receiver listens on loopback, which the forgery guard refuses by default.
    return Settings(
        database_url=db_url,
        var_dir=tmp_path / "var",
        allow_private_webhook_targets=True,
        _env_file=None,
    )


@pytest.fixture
def clock() -> FrozenClock:
    # Near real time, so the reference library's ±5 min timestamp check can pass.
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


@dataclass
class Hooks:
    client: httpx.AsyncClient
    key: str
    database: Database
    clock: FrozenClock
    receiver: Receiver
    box: SecretBox
    config: DispatchConfig = field(
        default_factory=lambda: DispatchConfig(timeout_seconds=2.0, allow_private=True)
    )
    enricher: Enricher | None = None
    resolver: AbstractResolver | None = None
    """The name server behind the forgery guard; the system's when None."""
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.key)

    def dispatcher(self) -> Dispatcher:
        return Dispatcher(
            self.database,
            self.clock,
            self.box,
            self.config,
            enricher=self.enricher,
            rng=self.rng,
            resolver=self.resolver,
        )

    async def create_endpoint(
        self, path: str = "/hook", event_types: list[str] | None = None, **extra: Any
    ) -> tuple[str, str]:
        """An endpoint at the receiver's path; its secret joins the receiver's; (id, secret)."""
        response = await self.client.post(
            "/v1/webhook-endpoints",
            headers=self.auth,
            json={"url": self.receiver.url(path), "event_types": event_types or ["*"], **extra},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        self.receiver.secrets.append(body["secret"])
        return body["id"], body["secret"]

    async def emit(self, type_: str = "credit.earned", data: dict[str, Any] | None = None) -> str:
        async with self.database.transaction() as session:
            await record_events(
                session, "acme", [NewEvent(type_, data or {"n": 1})], self.clock.now()
            )
            latest = await session.scalar(
                select(Event.id).where(Event.tenant_id == "acme").order_by(Event.id.desc()).limit(1)
            )
        return str(latest)

    async def pump(self) -> int:
        """Route every pending event, then attempt every due delivery once; attempts made."""
        router = Router(self.database, self.clock)
        while await router.route_pending():
            pass
        dispatcher = self.dispatcher()
        try:
            return await dispatcher.deliver_due()
        finally:
            await dispatcher.close()

    async def deliveries(self, event_id: str | None = None) -> list[Delivery]:
        async with self.database.transaction() as session:
            stmt = select(Delivery).order_by(Delivery.created_at, Delivery.id)
            if event_id is not None:
                stmt = stmt.where(Delivery.event_id == uuid.UUID(event_id))
            return list((await session.scalars(stmt)).all())

    async def endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        async with self.database.transaction() as session:
            row = await session.get(WebhookEndpoint, ("acme", uuid.UUID(endpoint_id)))
            assert row is not None
            return row


@pytest.fixture
async def hooks(
    client: httpx.AsyncClient,
    acme: str,
    database: Database,
    clock: FrozenClock,
    receiver: Receiver,
    settings: Settings,
) -> Hooks:
    return Hooks(
        client=client,
        key=acme,
        database=database,
        clock=clock,
        receiver=receiver,
        box=SecretBox(settings.master_key()),
    )
