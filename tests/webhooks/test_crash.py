"""Crash safety: a worker killed with SIGKILL mid-delivery loses nothing (both databases)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from coursegate.config import Settings
from coursegate.models import DeliveryAttempt
from tests import servers
from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Reply

EVENTS = 150


async def ready(server: servers.Server, timeout_s: float = 30.0) -> None:
    """Like `servers.wait_ready`, without blocking the loop the receiver answers on."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            assert server.alive(), server.output()[-3000:]
            try:
                if (await http.get(server.url + "/healthz", timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(server.output()[-3000:])


@pytest.mark.long
async def test_sigkill_mid_delivery_then_restart_delivers_every_event(
    hooks: Hooks, settings: Settings, tmp_path: Path
) -> None:
    # Slow answers keep many deliveries in flight when the worker dies.
    hooks.receiver.default = Reply(200, delay=0.5)
    await hooks.create_endpoint()
    emitted = {await hooks.emit("credit.earned", {"n": i}) for i in range(EVENTS)}
    env = {
        "COURSEGATE_DATABASE_URL": settings.resolved_database_url,
        "COURSEGATE_VAR_DIR": str(settings.var_dir),
        "COURSEGATE_ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
        "COURSEGATE_WEBHOOK_TIMEOUT_SECONDS": "1",
        "COURSEGATE_DISPATCH_CONCURRENCY": "32",
        "COURSEGATE_DISPATCH_POLL_SECONDS": "0.2",
        "COURSEGATE_LOG_LEVEL": "WARNING",
    }

    first = servers.start(["worker"], env, tmp_path / "worker-1.log")
    try:
        await ready(first)
        await hooks.receiver.wait_for(10, within=30)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
    finally:
        servers.stop(first)
    before_restart = {r.msg_id for r in hooks.receiver.received}
    assert 0 < len(before_restart) < EVENTS, "killed mid-way, with work left"

    second = servers.start(["worker"], env, tmp_path / "worker-2.log")
    try:
        await ready(second)
        deadline = time.monotonic() + 60
        while {r.msg_id for r in hooks.receiver.received} != emitted:
            assert time.monotonic() < deadline, (
                f"{len(emitted - {r.msg_id for r in hooks.receiver.received})} never arrived"
            )
            await asyncio.sleep(0.2)
        # Deliveries whose answer the killed worker never wrote down are sent
        # again once their lease runs out: at least once.
        while {d.status for d in await hooks.deliveries()} != {"delivered"}:
            assert time.monotonic() < deadline, "deliveries left undone"
            await asyncio.sleep(0.2)
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{second.url}/metrics", timeout=5)).text
    finally:
        servers.stop(second)

    assert all(r.verified_by == (0,) or r.signed_by == (0,) for r in hooks.receiver.received)
    assert len(await hooks.deliveries()) == EVENTS, "each event became exactly one delivery"
    # The sends the killed worker had in flight are listed, as attempts of unknown
    # outcome; every message the receiver got twice is among them.
    async with hooks.database.transaction() as session:
        attempts = (await session.execute(select(DeliveryAttempt))).scalars().all()
    lost = {str(a.event_id) for a in attempts if a.outcome == "outcome_unknown"}
    assert lost, "sends were in flight when the worker died"
    seen: dict[str, int] = {}
    for r in hooks.receiver.received:
        seen[r.msg_id] = seen.get(r.msg_id, 0) + 1
    assert {m for m, n in seen.items() if n > 1} <= lost
    assert {str(a.event_id) for a in attempts if a.outcome == "succeeded"} == emitted
    assert 'coursegate_webhook_deliveries_total{outcome="delivered"}' in metrics
    assert "coursegate_webhook_due_backlog" in metrics
