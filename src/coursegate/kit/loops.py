"""Background loops over due work held in tables (deliveries, emails, routing).

The work itself is durable: rows committed with the change that caused them.
A loop only drains them, so a process may die at any point and another (or
the same one, restarted) picks up where it left off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from coursegate.kit.outage import log_failure

log = structlog.get_logger(__name__)

Step = Callable[[], Awaitable[int]]
"""Does one batch of work and says how many items it handled."""


class PollingLoop:
    """Runs a step again at once while it finds work, and waits `idle_seconds` when it does not.

    A failing step (database restarting, say) is logged and retried after
    `error_backoff_seconds`; the loop never dies of it. While the database is
    down that is a warning line per attempt, not a traceback.
    """

    def __init__(
        self,
        name: str,
        step: Step,
        *,
        idle_seconds: float,
        error_backoff_seconds: float = 2.0,
    ) -> None:
        self.name = name
        self._step = step
        self._idle = idle_seconds
        self._error_backoff = error_backoff_seconds
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                handled = await self._step()
            except Exception as exc:
                log_failure(log, "background step failed", exc, loop=self.name)
                await self._pause(self._error_backoff)
                continue
            if handled == 0:
                await self._pause(self._idle)

    async def _pause(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
