"""The background work of `serve` and `worker` processes: routing events into
deliveries, dispatching them, sending queued email, the queue's gauges, and the
Overview's counts.

Everything these loops do is held in tables, so stopping a process at any
point loses nothing: another process, or this one restarted, carries on.
"""

from __future__ import annotations

import structlog

from coursegate.config import Settings
from coursegate.console.rollup import ActivityRollup
from coursegate.db import Database
from coursegate.kit.clock import Clock
from coursegate.kit.loops import PollingLoop
from coursegate.kit.secrets import SecretBox
from coursegate.mail.mailer import mailer_from_settings
from coursegate.mail.queue import MailSender
from coursegate.webhooks import metrics
from coursegate.webhooks.dispatcher import DispatchConfig, Dispatcher
from coursegate.webhooks.enrichment import Enricher, build_source, dispose_source
from coursegate.webhooks.flags import EnrichmentFlags
from coursegate.webhooks.queue import DeliveryQueue
from coursegate.webhooks.routing import Router

log = structlog.get_logger(__name__)

GAUGE_SECONDS = 5.0
# How often the Overview's counts catch up; what they have not caught is counted live.
ROLLUP_SECONDS = 30.0


def dispatch_config(settings: Settings) -> DispatchConfig:
    return DispatchConfig(
        timeout_seconds=settings.webhook_timeout_seconds,
        concurrency=settings.dispatch_concurrency,
        batch=settings.dispatch_batch,
        allow_private=settings.allow_private_webhook_targets,
        idle_seconds=settings.dispatch_poll_seconds,
    )


class BackgroundWork:
    def __init__(
        self, settings: Settings, database: Database, clock: Clock, box: SecretBox
    ) -> None:
        self.database = database
        self.clock = clock
        self.source = build_source(settings, database, clock)
        enricher = Enricher(
            self.source,
            EnrichmentFlags(),
            timeout_seconds=settings.learning_time_timeout_seconds,
        )
        self.dispatcher = Dispatcher(
            database, clock, box, dispatch_config(settings), enricher=enricher
        )
        self.router = Router(database, clock, on_routed=self.dispatcher.wake)
        self.loops = [
            PollingLoop(
                "webhook-router",
                self.router.route_pending,
                idle_seconds=settings.dispatch_poll_seconds,
            ),
            PollingLoop("webhook-gauges", self.update_gauges, idle_seconds=GAUGE_SECONDS),
            PollingLoop(
                "activity-rollup",
                ActivityRollup(database, clock).step,
                idle_seconds=ROLLUP_SECONDS,
            ),
        ]
        mailer = mailer_from_settings(settings)
        if mailer is None:
            log.warning("no SMTP server configured: operational email stays queued")
        else:
            sender = MailSender(database, mailer, clock, sender=settings.email_from)
            self.loops.append(PollingLoop("mail-sender", sender.step, idle_seconds=5.0))

    def start(self) -> None:
        self.dispatcher.start()
        for loop in self.loops:
            loop.start()

    async def stop(self) -> None:
        for loop in self.loops:
            await loop.stop()
        await self.dispatcher.stop()
        dispose_source(self.source)

    async def update_gauges(self) -> int:
        now = self.clock.now()
        async with self.database.transaction() as session:
            due, oldest = await DeliveryQueue(session).backlog(now)
        metrics.DUE_BACKLOG.set(due)
        metrics.OLDEST_DUE_SECONDS.set(max((now - oldest).total_seconds(), 0) if oldest else 0)
        return 0
