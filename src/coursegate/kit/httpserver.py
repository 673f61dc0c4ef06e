"""The HTTP server's guard at the connection level, below any ASGI code.

uvicorn with httptools (the fastest pairing measured here, see docs/benchmarks.md) reads
request headers of any size into memory and waits for them, and for an announced body, for
as long as the client likes: a 16 MiB header was read whole, and slow clients held their
connections forever. Its only timeout covers idle keep-alive connections. This protocol
adds what a careful server owes its other clients:

- request headers are counted before the parser sees them: past the limit the connection
  gets 431 and is closed, so a header costs at most the limit (plus one socket read);
- a request must arrive whole (headers and announced body) within a deadline counted from
  its first byte, or from the connection's opening for a connection that sends nothing;
  past it the connection is closed;
- at most a bounded number of connections may be part-way through sending a request; one
  more evicts the one that has been at it longest. A well-behaved request arrives in one
  or two reads and leaves that set at once, so only slow senders are ever evicted.

Deadlines are not one timer per request (the hot path makes a thousand a second): the
connections receiving a request sit in one insertion-ordered dict, oldest first, which a
periodic sweep reads from the front until it meets one still in time.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from prometheus_client import Counter
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

log = structlog.get_logger("coursegate.http")

CONNECTIONS_CLOSED = Counter(
    "coursegate_http_connections_closed_total",
    "Connections the server closed for how they sent a request",
    ["reason"],
)


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int = 64 * 1024
    request_timeout_seconds: float = 30.0
    max_pending_requests: int = 256

    @property
    def sweep_seconds(self) -> float:
        """How often deadlines are checked: a deadline is kept to within a quarter of itself."""
        return min(1.0, self.request_timeout_seconds / 4)


def _raw_response(status: int, body: dict[str, Any]) -> bytes:
    """A whole HTTP/1.1 JSON response that closes the connection, for refusals made before
    there is a request to hand to the application."""
    payload = json.dumps(body, separators=(",", ":")).encode()
    return b"".join(
        (
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(payload),
            b"connection: close\r\n\r\n",
            payload,
        )
    )


MALFORMED = _raw_response(
    400,
    {
        "error": "VALIDATION_ERROR",
        "message": "malformed HTTP request",
        "details": [{"field": "request", "constraint": "invalid"}],
    },
)


class _Receiving:
    """The connections part-way through sending a request, oldest first, for one server."""

    def __init__(self, limits: HttpLimits) -> None:
        self.limits = limits
        self.started: dict[GuardedHttpToolsProtocol, float] = {}
        self.sweeping = False

    def enter(self, protocol: GuardedHttpToolsProtocol, now: float) -> None:
        if protocol in self.started:
            return
        self.started[protocol] = now
        if len(self.started) > self.limits.max_pending_requests:
            oldest = next(iter(self.started))
            self.started.pop(oldest)
            oldest.drop("too_many_pending")
        if not self.sweeping:
            self.sweeping = True
            protocol.loop.call_later(self.limits.sweep_seconds, self.sweep, protocol.loop)

    def leave(self, protocol: GuardedHttpToolsProtocol) -> None:
        self.started.pop(protocol, None)

    def sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        cutoff = loop.time() - self.limits.request_timeout_seconds
        late: list[GuardedHttpToolsProtocol] = []
        for protocol, started in self.started.items():
            if started > cutoff:
                break
            late.append(protocol)
        for protocol in late:
            self.started.pop(protocol, None)
            protocol.drop("request_timeout")
        if self.started:
            loop.call_later(self.limits.sweep_seconds, self.sweep, loop)
        else:
            self.sweeping = False


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header limit, a request deadline and a bound on
    slow senders. Made for one server by `guarded_protocol`, which gives it its limits."""

    limits: ClassVar[HttpLimits] = HttpLimits()
    receiving: ClassVar[_Receiving]

    _head_room = -1
    """Header bytes the current request may still send; -1 once its headers are complete."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_room = self.limits.max_header_bytes
        self.receiving.enter(self, self.loop.time())

    def connection_lost(self, exc: Exception | None) -> None:
        self.receiving.leave(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        while True:
            room = self._head_room
            if room < 0 or len(data) <= room:
                if room >= 0:
                    self._head_room = room - len(data)
                super().data_received(data)
                return
            if room == 0:
                self._refuse_head()
                return
            # Only what the limit still allows goes to the parser; the rest waits until the
            # headers are known to have ended within it.
            piece, data = data[:room], data[room:]
            self._head_room = 0
            super().data_received(piece)
            if self.transport.is_closing():
                return

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.receiving.enter(self, self.loop.time())

    def on_headers_complete(self) -> None:
        self._head_room = -1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.receiving.leave(self)
        self._head_room = self.limits.max_header_bytes
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """A request the parser cannot read gets SPEC §0's error body, not uvicorn's text."""
        CONNECTIONS_CLOSED.labels("malformed").inc()
        self.transport.write(MALFORMED)
        self.transport.close()

    def _refuse_head(self) -> None:
        CONNECTIONS_CLOSED.labels("headers_too_large").inc()
        self.receiving.leave(self)
        if self.cycle is None or self.cycle.response_complete:
            limit_kib = self.limits.max_header_bytes // 1024
            self.transport.write(
                _raw_response(
                    431,
                    {
                        "error": "PAYLOAD_TOO_LARGE",
                        "message": f"request headers over {limit_kib} KiB",
                    },
                )
            )
        # else: an earlier pipelined request is still being answered; a response now
        # would land inside it, so the connection just closes.
        self.transport.close()

    def drop(self, reason: str) -> None:
        """Close a connection whose request did not arrive in time or that was evicted."""
        if self.transport.is_closing():
            return
        CONNECTIONS_CLOSED.labels(reason).inc()
        log.debug("connection_closed", reason=reason)
        self.transport.close()


def guarded_protocol(limits: HttpLimits) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for one server: the limits, and the set of connections it watches."""
    server_limits = limits

    class ServerProtocol(GuardedHttpToolsProtocol):
        limits = server_limits
        receiving = _Receiving(server_limits)

    return ServerProtocol
