"""Keeps outbound webhooks from being aimed at our own network.

A webhook URL is chosen by a tenant, and the dispatcher POSTs to it from inside
our network, so an unchecked URL would let anyone reach loopback services,
cloud metadata endpoints or private hosts (server-side request forgery). The
check happens twice: when the URL is stored, on what the URL says (no DNS, the
machine may have none and the answer would be stale by send time anyway), and
again when it is sent, on the address the connection will actually use, so a
name re-pointed at a private address after creation is still refused.

URLs are judged as yarl parses them, because that is the parser aiohttp sends
with; judging with a different parser would leave room for a URL that one
reads as public and the other as private.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from coursegate.kit.errors import ValidationFailed

ERROR_CLASS = "forbidden_target"

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Everything in IANA's IPv4 special-purpose registry that is not globally
# reachable, plus multicast and the reserved class E. Written out rather than
# taken from `is_private`/`is_global`, whose meaning has changed between Python
# patch releases; a refusal must not depend on which one is installed.
_V4_FORBIDDEN = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", 0.0.0.0 reaches the local host
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT, private to the provider
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, home of cloud metadata services
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",  # retired 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",  # includes the broadcast address
    )
)

# Only 2000::/3 is global unicast; the rest of the IPv6 space is loopback,
# unspecified, ULA, link-local, site-local, multicast, discard or unassigned.
# The prefixes handled before this check (IPv4-mapped, NAT64, Teredo, 6to4)
# carry IPv4 addresses, which are judged instead.
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_FORBIDDEN = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments; Teredo inside it is judged by its IPv4 addresses
        "2001:db8::/32",
        "3fff::/20",
    )
)
_V6_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

_LOCALHOST_NAMES = frozenset({"localhost", "localhost.localdomain"})

# Characters no URL we send may contain: some parsers drop them silently
# (tabs, newlines) or read them as separators (backslash), which is how one
# string comes to name two different hosts.
_UNSAFE_CHAR = re.compile(r"[\x00-\x20\x7f\\]")
_URL_SHAPE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)")
_PORT = re.compile(r"[0-9]{1,5}")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# WHATWG's "ends in a number": such a host is an IPv4 address or nothing.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")
_V4_PART = re.compile(r"(?P<hex>0[xX][0-9a-fA-F]*)|(?P<oct>0[0-7]+)|(?P<dec>0|[1-9][0-9]*)")


class ForbiddenTarget(OSError):
    """A webhook target that is, or resolves only to, an address we refuse to connect to.

    An `OSError`, so that aiohttp's connector treats it like any failed lookup
    and wraps it in its own connection error instead of letting it escape raw.
    """

    def __init__(self, host: str, addresses: Iterable[str]) -> None:
        self.host = host
        self.addresses = tuple(addresses)
        listed = ", ".join(self.addresses) or "no address"
        message = f"{host} is a forbidden webhook target ({listed})"
        super().__init__(message)
        # aiohttp shows strerror, not the message, when it wraps the error.
        self.strerror = message

    def __reduce__(self) -> tuple[Any, ...]:
        # Failures are pickled when a durable step records them; the default
        # would rebuild from the message and lose the host and addresses.
        return (type(self), (self.host, self.addresses))


# --- addresses ---------------------------------------------------------------------------


def is_forbidden_address(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for any address a webhook must not reach.

    A string must be an IP address (an IPv6 zone such as `fe80::1%eth0` is
    allowed, as resolvers return them); anything else raises `ValueError`, so a
    host name passed by mistake is never quietly judged as safe.
    """
    addr = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(addr, ipaddress.IPv4Address):
        return _v4_forbidden(addr)
    return _v6_forbidden(addr)


def _v4_forbidden(addr: ipaddress.IPv4Address) -> bool:
    return any(addr in net for net in _V4_FORBIDDEN) or (
        addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    )


def _v6_forbidden(addr: ipaddress.IPv6Address) -> bool:
    # Addresses that carry an IPv4 address are as dangerous as the one they
    # carry: the kernel, a NAT64 gateway or a tunnel delivers to it.
    if addr.ipv4_mapped is not None:
        return _v4_forbidden(addr.ipv4_mapped)
    if addr in _V6_NAT64:
        return _v4_forbidden(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    if addr.teredo is not None:
        server, client = addr.teredo
        return _v4_forbidden(server) or _v4_forbidden(client)
    if addr.sixtofour is not None:
        return _v4_forbidden(addr.sixtofour)
    if addr not in _V6_GLOBAL_UNICAST:
        return True
    return any(addr in net for net in _V6_FORBIDDEN) or (
        addr.is_loopback
        or addr.is_link_local
        or addr.is_site_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    )


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address `inet_aton` would read in `host` (`127.1`, `0x7f.1`, `2130706433`), if any.

    getaddrinfo accepts these forms too, so a URL written this way reaches the
    address even though it does not look like one.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        match = _V4_PART.fullmatch(part)
        if match is None:
            return None
        if match["hex"] is not None:
            values.append(int(part[2:] or "0", 16))
        elif match["oct"] is not None:
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *leading, last = values
    if any(v > 0xFF for v in leading) or last >= 256 ** (5 - len(values)):
        return None
    number = last
    for i, v in enumerate(leading):
        number += v << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def _ends_in_number(host: str) -> bool:
    return _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]) is not None


def _literal_address(host: str) -> IPAddress | None:
    """The address an unbracketed yarl host denotes when it is an IP literal, in any spelling."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return None
    bare = host[:-1] if host.endswith(".") else host
    if not _ends_in_number(bare):
        return None
    return _legacy_ipv4(bare)


def _is_localhost_name(host: str) -> bool:
    name = host[:-1] if host.endswith(".") else host
    return name in _LOCALHOST_NAMES or name.endswith(".localhost")


# --- creation ----------------------------------------------------------------------------


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed.field("url", "invalid", message)


def _forbidden(message: str) -> ValidationFailed:
    return ValidationFailed.field("url", ERROR_CLASS, message)


def validate_webhook_url(url: str, *, allow_private: bool) -> str:
    """The URL, unchanged, if it may be stored as a webhook target; else `ValidationFailed` on `url`.

    Shape problems are `invalid` whatever `allow_private` says; a target on a
    forbidden address (an IP literal in any spelling, or a localhost name) is
    `forbidden_target` unless private targets are allowed. Names are not
    resolved here; the send-time check covers them.
    """
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(f"a webhook URL is at most {MAX_URL_LENGTH} characters")
    if _UNSAFE_CHAR.search(url) or any(ch.isspace() for ch in url):
        raise _invalid("the URL contains whitespace, control characters or a backslash")
    shape = _URL_SHAPE.match(url)
    if shape is None:
        raise _invalid("the URL must be absolute, such as https://hooks.example.com/coursegate")
    if shape["scheme"].lower() not in {"http", "https"}:
        raise _invalid("the URL scheme must be http or https")
    authority = shape["authority"]
    if "@" in authority:
        raise _invalid("the URL must not contain a user name or password")

    bracketed = authority.startswith("[")
    if bracketed:
        close = authority.find("]")
        if close < 0:
            raise _invalid("the URL has an unterminated IPv6 address")
        raw_host, after = authority[1:close], authority[close + 1 :]
        if after and not after.startswith(":"):
            raise _invalid("the URL has text after its IPv6 address")
        raw_port = after[1:] if after else None
    else:
        raw_host, sep, port_text = authority.rpartition(":")
        if not sep:
            raw_host, raw_port = authority, None
        else:
            raw_port = port_text
    if not raw_host:
        raise _invalid("the URL has no host")
    if raw_port and (_PORT.fullmatch(raw_port) is None or not 1 <= int(raw_port) <= 65535):
        raise _invalid("the URL port must be a number from 1 to 65535")

    try:
        host = URL(url).raw_host
    except ValueError as exc:
        raise _invalid(f"the URL cannot be parsed: {exc}") from None
    if not host:
        raise _invalid("the URL has no host")

    if bracketed:
        if "%" in raw_host:
            raise _invalid("IPv6 zone identifiers are not allowed in a webhook URL")
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise _invalid("the URL has a malformed IPv6 address") from None
        if not allow_private and is_forbidden_address(address):
            raise _forbidden(f"{address} is not a public address")
        return url

    if ":" in host:
        raise _invalid("IPv6 addresses must be written in brackets")
    bare = host[:-1] if host.endswith(".") else host
    if _ends_in_number(bare):
        ipv4 = _legacy_ipv4(bare)
        if ipv4 is None:
            raise _invalid(f"{host} is neither a host name nor an IPv4 address")
        if not allow_private and is_forbidden_address(ipv4):
            raise _forbidden(f"{host} is {ipv4}, which is not a public address")
        if host != str(ipv4):
            # Parsers disagree on these spellings (aiohttp refuses some of
            # them), so only the plain one is stored.
            raise _invalid(f"write the IPv4 address as {ipv4}")
        return url

    if len(bare) > 253 or not all(_LABEL.fullmatch(label) for label in bare.split(".")):
        raise _invalid(f"{host} is not a valid host name")
    if not allow_private and _is_localhost_name(host):
        raise _forbidden(f"{host} names the local machine")
    return url


# --- sending -----------------------------------------------------------------------------


def check_literal_target(url: str, *, allow_private: bool) -> None:
    """Raise `ForbiddenTarget` if the URL's host is an IP literal on a forbidden address.

    aiohttp connects to IP literals without asking the resolver, so
    `GuardedResolver` never sees them; names are left to it. A URL yarl cannot
    parse raises yarl's `ValueError`, as sending it would.
    """
    if allow_private:
        return
    host = URL(url).raw_host
    if not host:
        return
    address = _literal_address(host)
    if address is not None and is_forbidden_address(address):
        raise ForbiddenTarget(host, (str(address),))


def _resolved_forbidden(host: str) -> bool:
    try:
        return is_forbidden_address(host)
    except ValueError:
        # A resolver answer that is not an address cannot be vetted, so it is not used.
        return True


class GuardedResolver(AbstractResolver):
    """A resolver that hands aiohttp only the addresses a webhook may reach.

    Filtering the answer (rather than checking a name and then resolving it
    again) means the address vetted is the address connected to, so a DNS
    answer that changes between the two cannot slip a private address in.
    aiohttp caches what this returns, so the cache holds vetted addresses only.
    """

    def __init__(self, *, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self._allow_private = allow_private
        # The default is built on first use: ThreadedResolver binds to the
        # running loop, and this may be constructed before one runs.
        self._inner = inner

    def _resolver(self) -> AbstractResolver:
        if self._inner is None:
            self._inner = aiohttp.ThreadedResolver()
        return self._inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver().resolve(host, port, family)
        if self._allow_private or not results:
            return results
        kept = [r for r in results if not _resolved_forbidden(r["host"])]
        if not kept:
            raise ForbiddenTarget(host, (r["host"] for r in results))
        return kept

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def forbidden_cause(exc: BaseException) -> ForbiddenTarget | None:
    """The `ForbiddenTarget` behind a failed request, however aiohttp wrapped it, or None.

    aiohttp raises its own connection error with the resolver's error as
    `os_error` and as the cause; other layers may chain or group it.
    """
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ForbiddenTarget):
            return current
        linked: Sequence[BaseException | None] = (current.__cause__, current.__context__)
        pending.extend(e for e in linked if e is not None)
        if isinstance(current, aiohttp.ClientConnectorError):
            pending.append(current.os_error)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
    return None
