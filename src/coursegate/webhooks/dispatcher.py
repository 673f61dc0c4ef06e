"""Sending due deliveries: claim in batches, POST concurrently, record every attempt.

The dispatcher keeps `concurrency` requests in flight continuously: it claims
more as soon as there is room, and writes finished attempts in batches on its
own beat. A slow receiver therefore holds one slot for up to the timeout, not
a whole batch. Every claimed delivery carries a lease (its `next_attempt_at`
pushed out past the timeout), so if this process dies mid-send the delivery
falls due again and another worker sends it: at least once, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import structlog

from coursegate import __version__
from coursegate.db import Database
from coursegate.kit.clock import Clock
from coursegate.kit.ids import uuid7
from coursegate.kit.netguard import ERROR_CLASS as FORBIDDEN_TARGET
from coursegate.kit.netguard import GuardedResolver, check_literal_target, forbidden_cause
from coursegate.kit.outage import log_failure
from coursegate.kit.secrets import SecretBox
from coursegate.kit.signing import standard_webhook_headers
from coursegate.kit.timefmt import format_instant
from coursegate.webhooks import metrics
from coursegate.webhooks.consequences import apply_consequences
from coursegate.webhooks.enrichment import Enricher
from coursegate.webhooks.queue import (
    CANCELED,
    DELIVERED,
    FAILED,
    PENDING,
    DeliveryQueue,
    Job,
    Outcome,
)
from coursegate.webhooks.retry import parse_retry_after, retry_delay

log = structlog.get_logger(__name__)

RESPONSE_KEEP_BYTES = 2048
LEASE_MARGIN = timedelta(seconds=5)
FLUSH_SECONDS = 0.05
USER_AGENT = f"coursegate-webhooks/{__version__}"


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    timeout_seconds: float = 15.0
    concurrency: int = 64
    batch: int = 256
    allow_private: bool = False
    idle_seconds: float = 0.5


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int | None
    body: str | None
    error_class: str | None
    retry_after: str | None
    latency_ms: int


def render_body(job: Job, extra: dict[str, Any]) -> bytes:
    """`{"type", "timestamp", "data"}`: the same bytes for every attempt of a message.

    The event's data goes out as the database returns it, without a decode and
    an encode per delivery; only an enriched message is rebuilt.
    """
    data = json.dumps({**job_data(job), **extra}, ensure_ascii=False) if extra else job.data_json
    head = json.dumps(job.event_type, ensure_ascii=False)
    return (
        f'{{"type":{head},"timestamp":"{format_instant(job.occurred_at)}","data":{data}}}'.encode()
    )


def job_data(job: Job) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(job.data_json)
    return data


def classify(exc: BaseException) -> str:
    """A short public name for why an attempt never got an HTTP answer."""
    if forbidden_cause(exc) is not None:
        return FORBIDDEN_TARGET
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns_error"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "tls_error"
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerDisconnectedError):
        return "connection_error"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid_url"
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return "invalid_response"
    return "client_error"


class Dispatcher:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        box: SecretBox,
        config: DispatchConfig,
        *,
        enricher: Enricher | None = None,
        rng: random.Random | None = None,
        resolver: aiohttp.abc.AbstractResolver | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.box = box
        self.config = config
        self.enricher = enricher
        self.rng = rng or random.Random()
        self._resolver = resolver
        self._http: aiohttp.ClientSession | None = None
        self._secrets: dict[str, str] = {}
        self._results: list[Outcome] = []
        self._jobs: asyncio.Queue[Job | None] = asyncio.Queue()
        self._busy = 0
        self._flushed_at = time.monotonic()
        self._room = asyncio.Event()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # Lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        if self._http is not None:
            return
        connector = aiohttp.TCPConnector(
            limit=self.config.concurrency,
            limit_per_host=0,
            ttl_dns_cache=30,
            resolver=GuardedResolver(allow_private=self.config.allow_private, inner=self._resolver),
        )
        self._http = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds),
            headers={"User-Agent": USER_AGENT},
            auto_decompress=False,
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    def wake(self) -> None:
        """New deliveries were just committed by this process: look now, not at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming, let what is in flight finish, write it down."""
        self._stop.set()
        self._wake.set()
        self._room.set()
        if self._task is not None:
            await self._task
            self._task = None

    # One pass, for tests and tools ------------------------------------------

    async def deliver_due(self) -> int:
        """Attempt everything due now, batch after batch, and record it; how many attempts."""
        total = 0
        semaphore = asyncio.Semaphore(self.config.concurrency)

        async def bounded(job: Job) -> Outcome:
            async with semaphore:
                return await self.attempt(job)

        while True:
            jobs = await self._claim(self.config.batch)
            if not jobs:
                return total
            outcomes = await asyncio.gather(*(bounded(j) for j in jobs))
            await self._write(list(outcomes))
            total += len(jobs)

    # The continuous pipeline -------------------------------------------------

    async def _run(self) -> None:
        """One loop writes what finished, then claims what there is room for; `concurrency`
        senders take the claimed deliveries one by one.

        Writing and claiming take turns rather than running side by side, so a
        beat costs at most two short transactions, whatever the concurrency.
        """
        await self.open()
        senders = [asyncio.create_task(self._sender()) for _ in range(self.config.concurrency)]
        try:
            while not self._stop.is_set():
                if self._flush_due():
                    await self._flush_logged()
                # Twice the concurrency in hand: the senders keep busy while
                # this loop is away writing and claiming.
                room = 2 * self.config.concurrency - self._in_hand()
                if room < max(1, self.config.concurrency // 2):
                    await self._wait_room()
                    continue
                try:
                    jobs = await self._claim(min(room, self.config.batch))
                except Exception as exc:
                    log_failure(log, "claiming due deliveries failed", exc)
                    await self._pause(2.0)
                    continue
                if not jobs:
                    if self._in_hand():
                        await self._wait_room()
                    else:
                        await self._pause(self.config.idle_seconds)
                    continue
                for job in jobs:
                    self._jobs.put_nowait(job)
        finally:
            await self._jobs.join()
            for _ in senders:
                self._jobs.put_nowait(None)
            await asyncio.gather(*senders, return_exceptions=True)
            await self._flush_logged()
            await self.close()

    def _flush_due(self) -> bool:
        """A beat has passed, or enough has finished to be worth a transaction."""
        if not self._results:
            return False
        return (
            len(self._results) >= max(1, self.config.batch // 4)
            or time.monotonic() - self._flushed_at >= FLUSH_SECONDS
        )

    def _in_hand(self) -> int:
        """Claimed and not yet finished: waiting for a sender, or being sent."""
        return self._jobs.qsize() + self._busy

    async def _sender(self) -> None:
        while True:
            job = await self._jobs.get()
            if job is None:
                self._jobs.task_done()
                return
            self._busy += 1
            try:
                outcome = await self.attempt(job)
                # Look the list up only now: a flush during the attempt replaced it.
                self._results.append(outcome)
            except Exception as exc:
                # A bug, or the database gone, not a receiver's
                # failure (those are outcomes): the delivery goes again when its lease
                # runs out.
                log_failure(log, "delivery attempt crashed", exc, delivery_id=str(job.id))
            finally:
                self._busy -= 1
                self._jobs.task_done()
                self._room.set()

    async def _wait_room(self) -> None:
        """Until a slot frees up, or a beat passes (finished attempts are written each beat)."""
        self._room.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room.wait(), timeout=FLUSH_SECONDS)

    async def _flush_logged(self) -> None:
        try:
            await self._flush()
        except Exception as exc:
            # Kept in memory and written on the next beat; if the process dies
            # first, the leases run out and the deliveries go again.
            log_failure(log, "recording delivery attempts failed", exc)

    async def _flush(self) -> None:
        if not self._results:
            return
        batch, self._results = self._results, []
        self._flushed_at = time.monotonic()
        try:
            await self._write(batch)
        except Exception:
            self._results[:0] = batch
            raise

    async def _pause(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    # Claim, attempt, write ---------------------------------------------------

    async def _claim(self, limit: int) -> list[Job]:
        now = self.clock.now()
        # Long enough to send (one timeout) and to write the result down (a
        # second timeout's worth, for a database that is slow for a moment).
        lease = now + 2 * timedelta(seconds=self.config.timeout_seconds) + LEASE_MARGIN
        async with self.database.transaction() as session:
            return await DeliveryQueue(session).claim_due(now, lease, limit)

    async def _write(self, outcomes: list[Outcome]) -> None:
        async with self.database.transaction() as session:
            queue = DeliveryQueue(session)
            await queue.record(outcomes)
            await apply_consequences(session, queue, outcomes, self.clock.now())
        for outcome in outcomes:
            metrics.DELIVERY_OUTCOMES.labels(outcome_label(outcome)).inc()

    async def attempt(self, job: Job) -> Outcome:
        """One POST of one message; never raises: whatever happens becomes the attempt's record."""
        if not job.enabled:
            return Outcome(job, CANCELED, job.lease, None, job.enrichment)
        extra = job.enrichment
        if extra is None:
            extra = await self._enrich(job)
        body = render_body(job, extra)
        now = self.clock.now()
        headers = standard_webhook_headers(
            str(job.event_id), self._signing_secrets(job, now), body, now
        )
        headers["Content-Type"] = "application/json"
        response = await self._post(job.url, body, headers)
        metrics.ATTEMPT_SECONDS.observe(response.latency_ms / 1000)
        return self._outcome(job, now, response, extra)

    async def _enrich(self, job: Job) -> dict[str, Any]:
        endpoint_id = str(job.endpoint_id)
        if self.enricher is None or not self.enricher.wants(
            job.tenant_id, endpoint_id, job.enrichments, job.event_type
        ):
            return {}
        return await self.enricher.fields(job.tenant_id, endpoint_id, job_data(job))

    def _signing_secrets(self, job: Job, now: datetime) -> list[str]:
        secrets = [self._decrypt(job.secret_encrypted)]
        if (
            job.previous_secret_encrypted is not None
            and job.previous_secret_expires_at is not None
            and job.previous_secret_expires_at > now
        ):
            secrets.append(self._decrypt(job.previous_secret_encrypted))
        return secrets

    def _decrypt(self, token: str) -> str:
        secret = self._secrets.get(token)
        if secret is None:
            if len(self._secrets) > 10_000:
                self._secrets.clear()
            secret = self._secrets[token] = self.box.decrypt(token)
        return secret

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        if self._http is None:
            await self.open()
        assert self._http is not None
        started = time.perf_counter()
        try:
            check_literal_target(url, allow_private=self.config.allow_private)
            async with self._http.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                kept = await _read_upto(response, RESPONSE_KEEP_BYTES)
                return Response(
                    status_code=response.status,
                    body=kept.decode("utf-8", errors="replace"),
                    error_class=None if 200 <= response.status < 300 else "http_status",
                    retry_after=response.headers.get("Retry-After"),
                    latency_ms=_elapsed_ms(started),
                )
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            return Response(None, None, classify(exc), None, _elapsed_ms(started))

    def _outcome(
        self, job: Job, now: datetime, response: Response, extra: dict[str, Any]
    ) -> Outcome:
        attempt = {
            "tenant_id": job.tenant_id,
            "id": uuid7(),
            "endpoint_id": job.endpoint_id,
            "delivery_id": job.id,
            "event_id": job.event_id,
            "attempt": job.attempts + 1,
            "attempted_at": now,
            "outcome": "succeeded" if response.error_class is None else "failed",
            "status_code": response.status_code,
            "latency_ms": response.latency_ms,
            "response_body": response.body,
            "error_class": response.error_class,
        }
        if response.error_class is None:
            return Outcome(job, DELIVERED, now, attempt, extra)
        if response.status_code == 410:
            return Outcome(job, FAILED, now, attempt, extra, gone=True)
        delay = retry_delay(
            job.attempts + 1, self.rng, parse_retry_after(response.retry_after, now)
        )
        if delay is None:
            return Outcome(job, FAILED, now, attempt, extra)
        return Outcome(job, PENDING, now + delay, attempt, extra)


def outcome_label(outcome: Outcome) -> str:
    if outcome.gone:
        return "gone"
    if outcome.status == PENDING:
        return "retrying"
    return outcome.status


async def _read_upto(response: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
