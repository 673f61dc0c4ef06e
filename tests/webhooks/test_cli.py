"""`coursegate replay deliveries`, run as an operator would (in this process: tests/cli.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

from coursegate.config import Settings
from tests.cli import run_cli
from tests.webhooks.conftest import Hooks


async def test_replay_deliveries_queues_every_message_since_then(
    hooks: Hooks, settings: Settings
) -> None:
    since = hooks.clock.now()
    endpoint_id, _ = await hooks.create_endpoint()
    sent = {await hooks.emit() for _ in range(3)}
    await hooks.pump()
    hooks.receiver.received.clear()

    done = await asyncio.to_thread(
        run_cli,
        settings,
        "replay",
        "deliveries",
        "--tenant",
        "acme",
        "--endpoint",
        endpoint_id,
        "--since",
        since.isoformat(),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"tenant": "acme", "endpoint": endpoint_id, "queued": 3}
    # The command stamps its deliveries with the real time, a few seconds on.
    hooks.clock.advance(timedelta(minutes=1))
    await hooks.pump()
    assert {r.msg_id for r in hooks.receiver.received} == sent


async def test_replay_deliveries_refusals(hooks: Hooks, settings: Settings) -> None:
    endpoint_id, _ = await hooks.create_endpoint()
    cases = [
        (
            ["--tenant", "acme", "--endpoint", endpoint_id, "--since", "2026-01-01T00:00:00"],
            "VALIDATION_ERROR",
        ),
        (
            ["--tenant", "acme", "--endpoint", endpoint_id, "--since", "yesterday"],
            "VALIDATION_ERROR",
        ),
        (
            [
                "--tenant",
                "acme",
                "--endpoint",
                str(uuid.uuid4()),
                "--since",
                "2026-01-01T00:00:00Z",
            ],
            "NOT_FOUND",
        ),
        (
            ["--tenant", "globex", "--endpoint", endpoint_id, "--since", "2026-01-01T00:00:00Z"],
            "NOT_FOUND",
        ),
    ]
    for args, code in cases:
        done = await asyncio.to_thread(run_cli, settings, "replay", "deliveries", *args)
        assert done.returncode == 1, (args, done.stdout)
        assert done.stderr.startswith(code), (args, done.stderr)
    assert await hooks.deliveries() == []
