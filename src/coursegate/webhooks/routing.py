"""Fan-out: each new event becomes one delivery per enabled endpoint subscribed to it.

Runs in workers, after the event's transaction committed (SPEC §5): the hot
path that records a completion only appends the event row. Claiming with
`SKIP LOCKED` lets several workers route side by side; marking the events
routed in the same transaction as their deliveries means a crash either
routed a batch entirely or not at all.
"""

from __future__ import annotations

from collections.abc import Callable

from coursegate.db import Database
from coursegate.kit.clock import Clock
from coursegate.webhooks.catalogue import subscribes
from coursegate.webhooks.queue import DeliveryQueue, new_delivery

ROUTE_BATCH = 500
EVENT = "event"


class Router:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        batch: int = ROUTE_BATCH,
        on_routed: Callable[[], None] | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.batch = batch
        self.on_routed = on_routed

    async def route_pending(self) -> int:
        """Route one batch of unrouted events; how many events it took."""
        async with self.database.transaction() as session:
            queue = DeliveryQueue(session)
            events = await queue.claim_unrouted(self.batch)
            if not events:
                return 0
            subscribers = await queue.subscribers(sorted({e.tenant_id for e in events}))
            now = self.clock.now()
            # An endpoint receives what happened from its creation on; older
            # events are one `replay` away.
            rows = [
                new_delivery(e.tenant_id, s.id, e.id, EVENT, now)
                for e in events
                for s in subscribers[e.tenant_id]
                if s.created_at <= e.occurred_at and subscribes(s.event_types, e.type)
            ]
            await queue.add_deliveries(rows)
            await queue.mark_routed([e.id for e in events], now)
        if rows and self.on_routed is not None:
            self.on_routed()
        return len(events)
