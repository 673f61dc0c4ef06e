"""The partner HTTP client against a real fake partner on loopback: the token reused and
fetched again once on a 401, every error class, retries with backoff, `Retry-After`,
and neither the client secret nor a token in any log line or error."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from coursegate.connectors.http import (
    PartnerClient,
    PartnerError,
    PermanentPartnerError,
    RetryPolicy,
    TransientPartnerError,
    retry_after,
)
from tests.connectors.conftest import Sleeps
from tests.connectors.fake_partners import DataPassFake, Fault, datapass_entry
from tests.servers import free_port

PAGE: dict[str, str | int] = {"state": "validated", "limit": 2, "offset": 0}


@pytest.fixture
def fake() -> Iterator[DataPassFake]:
    with DataPassFake() as partner:
        partner.entries = [datapass_entry(n) for n in range(1, 6)]
        yield partner


def client(
    fake: DataPassFake,
    sleeps: Sleeps,
    *,
    secret: str | None = None,
    allow_private: bool = True,
    timeout: float = 5.0,
) -> PartnerClient:
    return PartnerClient(
        token_url=fake.auth_url,
        client_id=fake.client_id,
        client_secret=secret if secret is not None else fake.client_secret,
        allow_private=allow_private,
        policy=RetryPolicy(timeout=timeout),
        sleep=sleeps,
    )


def list_requests(fake: DataPassFake) -> list[Any]:
    return [r for r in fake.requests if r.route == "list"]


async def test_token_is_fetched_once_and_reused(fake: DataPassFake) -> None:
    sleeps = Sleeps()
    async with client(fake, sleeps) as partner:
        first = await partner.get_json(f"{fake.api_base_url}/authorization_requests", PAGE)
        second = await partner.get_json(
            f"{fake.api_base_url}/authorization_requests", {**PAGE, "offset": 2}
        )
    assert [e["id"] for e in first] == [1, 2]
    assert [e["id"] for e in second] == [3, 4]
    assert len(fake.tokens_issued) == 1
    assert {r.headers["authorization"] for r in list_requests(fake)} == {
        f"Bearer {fake.tokens_issued[0]}"
    }
    assert sleeps.waits == []


async def test_a_refused_token_is_fetched_again_once(fake: DataPassFake) -> None:
    sleeps = Sleeps()
    async with client(fake, sleeps) as partner:
        await partner.get_json(f"{fake.api_base_url}/authorization_requests", PAGE)
        fake.revoke_tokens()
        page = await partner.get_json(f"{fake.api_base_url}/authorization_requests", PAGE)
    assert [e["id"] for e in page] == [1, 2]
    assert len(fake.tokens_issued) == 2
    assert [r.status for r in list_requests(fake)] == [200, 401, 200]
    assert sleeps.waits == []  # the new token is asked for at once, not after a backoff


async def test_server_errors_are_retried_with_growing_backoff(fake: DataPassFake) -> None:
    sleeps = Sleeps()
    fake.faults["list"].extend([Fault(503), Fault(500)])
    async with client(fake, sleeps) as partner:
        page = await partner.get_json(f"{fake.api_base_url}/authorization_requests", PAGE)
    assert len(page) == 2
    assert [r.status for r in list_requests(fake)] == [503, 500, 200]
    policy = RetryPolicy()
    assert len(sleeps.waits) == 2
    assert 0 <= sleeps.waits[0] <= policy.base_delay
    assert 0 <= sleeps.waits[1] <= policy.base_delay * 2


async def test_five_tries_in_all_then_the_transient_error(fake: DataPassFake) -> None:
    sleeps = Sleeps()
    fake.faults["list"].extend([Fault(502)] * 6)
    async with client(fake, sleeps) as partner:
        with pytest.raises(TransientPartnerError) as caught:
            await partner.get_json(f"{fake.api_base_url}/authorization_requests", PAGE)
    assert caught.value.error_class == "http_5xx"
    assert len(list_requests(fake)) == 5
    assert len(sleeps.waits) == 4


async def test_429_waits_as_long_as_retry_after_says(fake: DataPassFake) -> None:
    sleeps = Sleeps()
    fake.faults["list"].append(Fault(429, retry_after="7"))
    async with client(fake, sleeps) as partner:
        await partner.get_json(f"{fake.api_base_url}/authorization_requests", PAGE)
    assert sleeps.waits == [7.0]


@pytest.mark.parametrize("status", [400, 403, 404, 422])
async def test_other_client_errors_are_permanent_and_not_retried(
    fake: DataPassFake, status: int
) -> None:
    sleeps = Sleeps()
    fake.faults["list"].append(Fault(status))
    async with client(fake, sleeps) as partner:
        with pytest.raises(PermanentPartnerError) as caught:
            await partner.get_json(f"{fake.api_base_url}/authorization_requests", PAGE)
    assert caught.value.error_class == "http_4xx"
    assert str(status) in caught.value.message
    assert len(list_requests(fake)) == 1
    assert sleeps.waits == []


async def test_a_timeout_is_transient_and_retried(fake: DataPassFake) -> None:
    sleeps = Sleeps()
    fake.faults["list"].append(Fault(200, delay=1.5))
    async with client(fake, sleeps, timeout=0.3) as partner:
        page = await partner.get_json(f"{fake.api_base_url}/authorization_requests", PAGE)
    assert len(page) == 2
    assert len(sleeps.waits) == 1


async def test_a_refused_connection_is_transient() -> None:
    sleeps = Sleeps()
    closed = f"http://127.0.0.1:{free_port()}"
    partner = PartnerClient(
        token_url=f"{closed}/oauth/token",
        client_id="x",
        client_secret="y",
        allow_private=True,
        sleep=sleeps,
    )
    async with partner:
        with pytest.raises(TransientPartnerError) as caught:
            await partner.get_json(f"{closed}/api/authorization_requests", PAGE)
    assert caught.value.error_class == "connection"
    assert len(sleeps.waits) == 4


async def test_refused_credentials_are_a_401_of_the_token_endpoint(fake: DataPassFake) -> None:
    sleeps = Sleeps()
    async with client(fake, sleeps, secret="not-the-secret") as partner:
        with pytest.raises(TransientPartnerError) as caught:
            await partner.get_json(f"{fake.api_base_url}/authorization_requests", PAGE)
    assert caught.value.error_class == "http_401"
    assert "token endpoint" in caught.value.message
    assert list_requests(fake) == []
    assert len([r for r in fake.requests if r.route == "token"]) == 5


async def test_a_reply_that_is_not_json_is_permanent(fake: DataPassFake) -> None:
    sleeps = Sleeps()
    fake.faults["list"].append(Fault(200, body="<html>maintenance</html>"))
    async with client(fake, sleeps) as partner:
        with pytest.raises(PermanentPartnerError) as caught:
            await partner.get_json(f"{fake.api_base_url}/authorization_requests", PAGE)
    assert caught.value.error_class == "invalid_response"


async def test_private_targets_are_refused_unless_allowed(fake: DataPassFake) -> None:
    sleeps = Sleeps()
    async with client(fake, sleeps, allow_private=False) as partner:
        with pytest.raises(PermanentPartnerError) as caught:
            await partner.get_json(f"{fake.api_base_url}/authorization_requests", PAGE)
    assert caught.value.error_class == "forbidden_target"
    assert fake.requests == []


def test_retry_after_reads_seconds_and_dates() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 6, 10, 12, 0, 0, tzinfo=UTC)
    assert retry_after("12", now) == 12.0
    assert retry_after("Wed, 10 Jun 2026 12:00:30 GMT", now) == 30.0
    assert retry_after("Wed, 10 Jun 2026 11:00:00 GMT", now) == 0.0
    assert retry_after("86400", now) == 300.0
    assert retry_after("soon", now) is None
    assert retry_after(None, now) is None


async def test_no_secret_or_token_in_any_log_line_or_error(
    fake: DataPassFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sleeps = Sleeps()
    fake.faults["list"].extend([Fault(503), Fault(429, retry_after="1")])
    errors: list[PartnerError] = []
    async with client(fake, sleeps) as partner:
        await partner.get_json(f"{fake.api_base_url}/authorization_requests", PAGE)
        fake.revoke_tokens()
        await partner.get_json(f"{fake.api_base_url}/authorization_requests", PAGE)
        fake.faults["list"].extend([Fault(403)])
        try:
            await partner.get_json(f"{fake.api_base_url}/authorization_requests", PAGE)
        except PartnerError as exc:
            errors.append(exc)
    assert len(fake.tokens_issued) == 2
    assert caplog.records, "debug logging of the HTTP stack was captured"
    text = caplog.text + "".join(f"{e!r}{e}" for e in errors)
    for secret in (fake.client_secret, *fake.tokens_issued):
        assert secret not in text
