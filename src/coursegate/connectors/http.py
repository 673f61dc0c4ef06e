"""Talking to a partner API: OAuth2 client credentials, error classes, retries (SPEC §4).

Every failure is sorted into one of two kinds because the run needs to know
what to do next, not only that something broke:

- **transient**: the partner may answer next time: a refused or dropped
  connection, a timeout, a 5xx, a 401 (a token the partner stopped honouring;
  a fresh one is fetched once at once), a 429;
- **permanent**: asking again will get the same answer: any other 4xx, a
  reply that is not the JSON the API promises.

A transient failure is tried again with exponential backoff (with jitter), 5
tries in all; a 429 waits as long as its `Retry-After` says (capped). The
token comes from authlib's client-credentials flow over httpx and is reused
until it expires. Neither the client secret nor a token is ever put into an
error message or a log line: errors name the status, the route and the class.
"""

from __future__ import annotations

import asyncio
import random
import socket
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import authlib.deprecate
import httpx

with warnings.catch_warnings():
    # authlib prefers the `httpx2` fork and warns when it falls back to httpx, which is
    # what the rest of the service uses; the fallback is supported in this version.
    # (`authlib.deprecate` installs an "always" filter when imported: imported first,
    # so that this one comes after it and wins.)
    warnings.filterwarnings("ignore", category=authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

from coursegate.kit.netguard import ForbiddenTarget, check_literal_target, is_forbidden_address

if TYPE_CHECKING:
    from coursegate.config import Settings

TRIES = 5
MAX_RETRY_AFTER = 300.0
"""A partner asking for more than five minutes gets the rest of the run's tries later, not now."""


class PartnerError(Exception):
    """`error_class` is what runs record and events report: `connection`, `timeout`,
    `http_401`, `http_429`, `http_5xx`, `http_4xx`, `invalid_response`, `forbidden_target`."""

    transient = False

    def __init__(self, error_class: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.retry_after = retry_after


class TransientPartnerError(PartnerError):
    transient = True


class PermanentPartnerError(PartnerError):
    transient = False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    tries: int = TRIES
    base_delay: float = 1.0
    max_delay: float = 60.0
    timeout: float = 30.0

    @classmethod
    def of(cls, settings: Settings) -> RetryPolicy:
        return cls(
            base_delay=settings.connector_retry_base_seconds,
            timeout=settings.connector_timeout_seconds,
        )

    def delay(self, attempt: int) -> float:
        """Full jitter: a random wait up to the exponential step, so many connectors
        failing together do not come back together."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


Sleep = Callable[[float], Awaitable[None]]


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from `Retry-After`: a number of seconds or an HTTP date; None if absent
    or unreadable (then the usual backoff applies)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER)


def classify(response: httpx.Response, what: str) -> PartnerError:
    """The error a non-2xx answer stands for; `what` names the route for the message."""
    status = response.status_code
    message = f"{what} answered HTTP {status}"
    if status == 429:
        after = retry_after(response.headers.get("retry-after"), datetime.now(UTC))
        return TransientPartnerError("http_429", message, after)
    if status == 401:
        return TransientPartnerError("http_401", message)
    if status >= 500:
        return TransientPartnerError("http_5xx", message)
    return PermanentPartnerError("http_4xx", message)


def _transport_error(exc: httpx.TransportError, what: str) -> PartnerError:
    if isinstance(exc, httpx.TimeoutException):
        return TransientPartnerError("timeout", f"{what} timed out")
    return TransientPartnerError(
        "connection", f"{what} could not be reached ({type(exc).__name__})"
    )


class PartnerClient:
    """One partner's API: bearer token from its token URL, JSON GETs with retries."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        allow_private: bool,
        scope: str | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.token_url = token_url
        self.allow_private = allow_private
        self._sleep = sleep
        self._oauth = AsyncOAuth2Client(
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint=token_url,
            grant_type="client_credentials",
            scope=scope,
            timeout=self.policy.timeout,
            transport=transport,
            follow_redirects=False,
        )
        self._oauth.register_compliance_hook("access_token_response", self._token_response)

    async def __aenter__(self) -> PartnerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._oauth.aclose()

    async def get_json(self, url: str, params: Mapping[str, str | int]) -> Any:
        """The parsed JSON of a GET, tried up to `policy.tries` times while the failure
        is transient; the last failure is raised."""
        body, _ = await self.get_page(url, params)
        return body

    async def get_page(
        self, url: str, params: Mapping[str, str | int]
    ) -> tuple[Any, httpx.Headers]:
        """`get_json` with the response's headers, for partners that page through them."""
        attempt = 1
        while True:
            try:
                return await self._get_once(url, params)
            except TransientPartnerError as exc:
                if attempt >= self.policy.tries:
                    raise
                wait = exc.retry_after
                await self._sleep(wait if wait is not None else self.policy.delay(attempt))
                attempt += 1

    async def _get_once(
        self, url: str, params: Mapping[str, str | int]
    ) -> tuple[Any, httpx.Headers]:
        await self._check_target(url)
        if not self._oauth.token:
            await self._fetch_token()
        response = await self._send(url, params)
        if response.status_code == 401:
            # The partner stopped honouring our token before its expiry: fetch a new one, once.
            await self._fetch_token()
            response = await self._send(url, params)
        if not response.is_success:
            raise classify(response, "the partner API")
        try:
            return response.json(), response.headers
        except ValueError:
            raise PermanentPartnerError(
                "invalid_response", "the partner API answered something that is not JSON"
            ) from None

    async def _send(self, url: str, params: Mapping[str, str | int]) -> httpx.Response:
        try:
            response: httpx.Response = await self._oauth.get(url, params=dict(params))
            return response
        except httpx.TransportError as exc:
            raise _transport_error(exc, "the partner API") from None

    async def _fetch_token(self) -> None:
        await self._check_target(self.token_url)
        try:
            await self._oauth.fetch_token(self.token_url, grant_type="client_credentials")
        except httpx.TransportError as exc:
            raise _transport_error(exc, "the token endpoint") from None
        except PartnerError:
            raise
        except Exception:
            # authlib's errors may carry the endpoint's description; none of it is repeated.
            raise PermanentPartnerError(
                "invalid_response", "the token endpoint answered without a usable token"
            ) from None

    def _token_response(self, response: httpx.Response) -> httpx.Response:
        if not response.is_success:
            raise classify(response, "the token endpoint")
        return response

    async def _check_target(self, url: str) -> None:
        """The partner URLs were checked when saved; a name may have been re-pointed at
        a private address since, so its addresses are checked again before use."""
        if self.allow_private:
            return
        try:
            check_literal_target(url, allow_private=False)
            host = urlsplit(url).hostname or ""
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, None, type=socket.SOCK_STREAM
            )
        except ForbiddenTarget:
            raise PermanentPartnerError(
                "forbidden_target", "a partner URL names a private address"
            ) from None
        except (OSError, ValueError):
            return  # unresolvable now: the request itself reports the connection error
        if any(is_forbidden_address(str(info[4][0])) for info in infos):
            raise PermanentPartnerError(
                "forbidden_target", "a partner URL resolves to a private address"
            )
