"""Webhook targets on our own network are refused when stored and again when sent."""

from __future__ import annotations

import ipaddress
import pickle
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from coursegate.kit.errors import ValidationFailed
from coursegate.kit.netguard import (
    ERROR_CLASS,
    ForbiddenTarget,
    GuardedResolver,
    check_literal_target,
    forbidden_cause,
    is_forbidden_address,
    validate_webhook_url,
)

RECEIVER = "receiver.example.test"
# IDNA maps full-width characters to ASCII, so these name 127.0.0.1 and localhost.
FULLWIDTH_LOOPBACK = "".join(chr(ord(c) + 0xFEE0) for c in "127.0.0.1")
FULLWIDTH_LOCALHOST = "".join(chr(ord(c) + 0xFEE0) for c in "localhost")

FORBIDDEN = [
    "127.0.0.1",
    "127.255.255.254",
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "100.127.255.255",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "0.0.0.0",  # noqa: S104 - an address under test, nothing binds to it
    "0.1.2.3",
    "192.0.0.8",
    "192.0.2.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
    "100::1",
    "2001:db8::1",
    "3fff::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "64:ff9b::7f00:1",
    "64:ff9b:1::a00:1",
    "2002:7f00:1::1",
    "2002:c0a8:101::1",
    # Teredo: server 65.54.227.120, client 10.0.0.1 (stored inverted).
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",
]

ALLOWED = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "100.63.255.255",
    "100.128.0.1",
    "172.32.0.1",
    "192.169.0.1",
    "223.255.255.254",
    "2606:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
    # Teredo: server 65.54.227.120, client 8.8.8.8.
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
]


@pytest.mark.parametrize("address", FORBIDDEN)
def test_forbidden_addresses(address: str) -> None:
    assert is_forbidden_address(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses(address: str) -> None:
    assert not is_forbidden_address(address)


def test_address_objects_are_judged_like_strings() -> None:
    assert is_forbidden_address(ipaddress.IPv4Address("10.0.0.1"))
    assert is_forbidden_address(ipaddress.IPv6Address("::1"))
    assert not is_forbidden_address(ipaddress.IPv4Address("8.8.8.8"))
    assert not is_forbidden_address(ipaddress.IPv6Address("2606:4700::1111"))


@pytest.mark.parametrize("not_an_address", ["example.com", "", "localhost", "[::1]", "127.1"])
def test_a_name_is_never_judged_as_an_address(not_an_address: str) -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        is_forbidden_address(not_an_address)


# --- validate_webhook_url ------------------------------------------------------------------


def refusal(url: str, *, allow_private: bool = False) -> tuple[str, str]:
    with pytest.raises(ValidationFailed) as excinfo:
        validate_webhook_url(url, allow_private=allow_private)
    error = excinfo.value
    assert error.status == 400
    assert error.body()["error"] == "VALIDATION_ERROR"
    assert error.details is not None
    [detail] = error.details
    return detail["field"], detail["constraint"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
        "gopher://hooks.example.com/",
        "javascript:alert(1)",
        "hooks.example.com/path",
        "//hooks.example.com/path",
        "http:hooks.example.com",
        "http:///path",
        "http://",
        "https://:443/",
        "https://user:pass@hooks.example.com/",
        "https://user@hooks.example.com/",
        "https://@hooks.example.com/",
        "https://hooks.example.com@127.0.0.1/",
        "https://hooks.example.com:0/",
        "https://hooks.example.com:65536/",
        "https://hooks.example.com:99999/",
        "https://hooks.example.com:http/",
        "https://hooks.example.com:+443/",
        "https://hooks.example.com:٤٤٣/",
        "https://hooks.example.com:-1/",
        "https://[::1/",
        "https://[v1.fe]/",
        "https://[2606:4700::1111]x/",
        "https://[2606:4700::1111%25eth0]/",
        "https://2606:4700::1111/",
        "https://hooks.example.com\\@127.0.0.1/",
        "https://hooks.example.com/a b",
        "https://hooks.example.com/\ttab",
        "https://hooks.exa\nmple.com/",
        " https://hooks.example.com/",
        "https://hooks..example.com/",
        "https://hooks!.example.com/",
        "https://exa%6dple.com/",
        "https://-hooks.example.com/",
        "https://" + "a" * 64 + ".example.com/",
        "https://1.2.3.4.5/",
        "https://1.2.3.256/",
        "https://hooks.example.123/",
        "https://08.8.8.8/",
        "https://hooks.example.com/" + "p" * 2049,
    ],
)
def test_malformed_urls_are_invalid(url: str) -> None:
    assert refusal(url) == ("url", "invalid")
    assert refusal(url, allow_private=True) == ("url", "invalid")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/hook",
        "https://10.0.0.7/",
        "https://172.20.1.1/",
        "https://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data/",
        "https://100.64.1.1/",
        "https://224.0.0.251/",
        "https://0.0.0.0/",
        "https://127.0.0.1./",
        "http://[::1]/",
        "http://[::1]:9000/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[ff02::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::FFFF:A9FE:A9FE]/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://10.1/",
        "http://0/",
        "http://" + FULLWIDTH_LOOPBACK + "/",
        "http://localhost/",
        "http://localhost:8000/",
        "http://LOCALHOST/",
        "http://localhost./",
        "http://api.localhost/",
        "http://a.b.localhost/",
        "http://localhost.localdomain/",
        "http://" + FULLWIDTH_LOCALHOST + "/",
    ],
)
def test_targets_on_our_network_are_forbidden(url: str) -> None:
    assert refusal(url) == ("url", ERROR_CLASS)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/coursegate",
        "http://hooks.example.com/",
        "HTTPS://Hooks.Example.COM/x?y=1#z",
        "https://hooks.example.com:8443/in",
        "https://hooks.example.com:/in",
        "https://hooks.example.com./in",
        "https://93.184.216.34/hook",
        "https://8.8.8.8:8443/",
        "https://[2606:4700::1111]/hook",
        "https://[2606:4700::1111]:8443/hook",
        "https://[::ffff:8.8.8.8]/",
        "https://пример.рф/hook",
        "https://xn--e1afmkfd.xn--p1ai/hook",
        "https://my_service.example.com/",
        "https://localhost.example.com/",
        "https://notlocalhost/",
        "https://hooks.example.com/a%20b?q=%2F",
        "https://hooks.example.com/" + "p" * (2048 - len("https://hooks.example.com/")),
    ],
)
def test_public_targets_are_stored_unchanged(url: str) -> None:
    assert validate_webhook_url(url, allow_private=False) == url
    assert validate_webhook_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.7/",
        "http://[::1]:9000/",
        "http://[fe80::1]/",
        "http://localhost:8000/",
        "http://receiver.localhost/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_allow_private_lets_our_network_through(url: str) -> None:
    assert validate_webhook_url(url, allow_private=True) == url


@pytest.mark.parametrize("url", ["http://2130706433/", "http://0x7f.1/", "http://127.1/"])
def test_allow_private_still_wants_plain_ipv4(url: str) -> None:
    assert refusal(url, allow_private=True) == ("url", "invalid")


def test_odd_spellings_of_a_public_address_are_invalid_not_forbidden() -> None:
    # 134744072 is 8.8.8.8: nothing private about it, but not stored in that form.
    assert refusal("https://134744072/") == ("url", "invalid")
    assert refusal("https://0x8.0x8.0x8.0x8/") == ("url", "invalid")


def test_the_refusal_explains_itself() -> None:
    with pytest.raises(ValidationFailed) as excinfo:
        validate_webhook_url("http://0x7f.1/", allow_private=False)
    assert excinfo.value.details is not None
    assert "127.0.0.1" in excinfo.value.details[0]["message"]


# --- send time: a real server behind a real connector ----------------------------------


@dataclass
class Receiver:
    port: int
    bodies: list[bytes] = field(default_factory=list)

    def url(self, host: str = RECEIVER) -> str:
        return f"http://{host}:{self.port}/hook"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    bodies: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port: int = runner.addresses[0][1]
    try:
        yield Receiver(port, bodies)
    finally:
        await runner.cleanup()


class TableResolver(AbstractResolver):
    """Answers from a fixed table, as a DNS server under someone else's control might."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = table
        self.asked: list[str] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"no such host {host}")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        self.closed = True


def session(resolver: AbstractResolver) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver))


async def test_a_name_resolving_to_loopback_is_refused_before_connecting(
    receiver: Receiver,
) -> None:
    table = TableResolver({RECEIVER: ["127.0.0.1"]})
    async with session(GuardedResolver(allow_private=False, inner=table)) as http:
        with pytest.raises(aiohttp.ClientError) as excinfo:
            await http.post(receiver.url(), data=b"{}")
    cause = forbidden_cause(excinfo.value)
    assert cause is not None
    assert cause.host == RECEIVER
    assert cause.addresses == ("127.0.0.1",)
    assert table.asked == [RECEIVER]
    assert receiver.bodies == []


async def test_allow_private_lets_the_same_request_through(receiver: Receiver) -> None:
    table = TableResolver({RECEIVER: ["127.0.0.1"]})
    async with (
        session(GuardedResolver(allow_private=True, inner=table)) as http,
        http.post(receiver.url(), data=b'{"n":1}') as response,
    ):
        assert response.status == 200
        assert await response.text() == "ok"
    assert receiver.bodies == [b'{"n":1}']


async def test_the_default_resolver_is_guarded_too(receiver: Receiver) -> None:
    # Real name resolution: localhost from the hosts file, and an inet_aton
    # spelling of 127.0.0.1 that getaddrinfo turns into the real address.
    async with session(GuardedResolver(allow_private=False)) as http:
        for host in ("localhost", "0x7f.1"):
            with pytest.raises(aiohttp.ClientError) as excinfo:
                await http.post(receiver.url(host), data=b"{}")
            cause = forbidden_cause(excinfo.value)
            assert cause is not None
            assert cause.host == host
            assert all(is_forbidden_address(a) for a in cause.addresses)
    assert receiver.bodies == []


async def guarded_post(
    http: aiohttp.ClientSession, url: str, *, allow_private: bool
) -> tuple[int, str]:
    """What the dispatcher does: literals are checked here, names by the resolver."""
    check_literal_target(url, allow_private=allow_private)
    async with http.post(url, data=b"{}", allow_redirects=False) as response:
        return response.status, await response.text()


async def test_an_ip_literal_is_refused_before_the_request(receiver: Receiver) -> None:
    table = TableResolver({})
    url = receiver.url("127.0.0.1")
    async with session(GuardedResolver(allow_private=False, inner=table)) as http:
        with pytest.raises(ForbiddenTarget) as excinfo:
            await guarded_post(http, url, allow_private=False)
    assert excinfo.value.host == "127.0.0.1"
    assert excinfo.value.addresses == ("127.0.0.1",)
    assert forbidden_cause(excinfo.value) is excinfo.value
    assert receiver.bodies == []

    async with session(GuardedResolver(allow_private=True, inner=table)) as http:
        assert await guarded_post(http, url, allow_private=True) == (200, "ok")
    assert receiver.bodies == [b"{}"]
    # aiohttp never asks a resolver about a literal, hence the separate check.
    assert table.asked == []


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1/", "127.0.0.1"),
        ("http://10.0.0.1:8080/x", "10.0.0.1"),
        ("http://[::1]/", "::1"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1"),
        ("http://[fe80::1%25eth0]/", "fe80::1"),
        ("http://2130706433/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://0x7f.0.0.1/", "127.0.0.1"),
        ("http://127.0.0.1./", "127.0.0.1"),
        ("http://" + FULLWIDTH_LOOPBACK + "/", "127.0.0.1"),
    ],
)
def test_literal_targets_are_refused_at_send_time(url: str, address: str) -> None:
    with pytest.raises(ForbiddenTarget) as excinfo:
        check_literal_target(url, allow_private=False)
    assert excinfo.value.addresses == (address,)
    check_literal_target(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://8.8.8.8/",
        "https://[2606:4700::1111]/",
        "https://hooks.example.com/",
        "http://localhost/",
        "https://receiver.example.test:8443/",
    ],
)
def test_public_literals_and_names_pass_the_literal_check(url: str) -> None:
    check_literal_target(url, allow_private=False)


# --- the resolver on its own -----------------------------------------------------------


async def test_a_mixed_answer_keeps_only_public_addresses() -> None:
    answer = ["10.0.0.5", "93.184.216.34", "::1", "2606:4700::1111", "fe80::1%eth0", "8.8.8.8"]
    table = TableResolver({RECEIVER: answer})
    guarded = GuardedResolver(allow_private=False, inner=table)
    results = await guarded.resolve(RECEIVER, 443, socket.AF_UNSPEC)
    assert [r["host"] for r in results] == ["93.184.216.34", "2606:4700::1111", "8.8.8.8"]
    assert all(r["port"] == 443 and r["hostname"] == RECEIVER for r in results)


async def test_allow_private_returns_the_answer_untouched() -> None:
    answer = ["10.0.0.5", "93.184.216.34", "::1"]
    guarded = GuardedResolver(allow_private=True, inner=TableResolver({RECEIVER: answer}))
    results = await guarded.resolve(RECEIVER, 80)
    assert [r["host"] for r in results] == answer


async def test_an_all_private_answer_names_every_address() -> None:
    answer = ["10.0.0.5", "169.254.169.254", "fd00::1", "not-an-address"]
    guarded = GuardedResolver(allow_private=False, inner=TableResolver({RECEIVER: answer}))
    with pytest.raises(ForbiddenTarget) as excinfo:
        await guarded.resolve(RECEIVER, 80)
    assert excinfo.value.host == RECEIVER
    assert excinfo.value.addresses == tuple(answer)
    assert RECEIVER in str(excinfo.value)


async def test_lookup_failures_pass_through_unchanged() -> None:
    guarded = GuardedResolver(allow_private=False, inner=TableResolver({}))
    with pytest.raises(OSError, match="no such host") as excinfo:
        await guarded.resolve("missing.example.test", 80)
    assert forbidden_cause(excinfo.value) is None


async def test_close_closes_the_inner_resolver() -> None:
    table = TableResolver({})
    await GuardedResolver(allow_private=False, inner=table).close()
    assert table.closed
    # Never used, so there is no default resolver to close.
    await GuardedResolver(allow_private=False).close()


# --- forbidden_cause -------------------------------------------------------------------


def fail_after(target: ForbiddenTarget, *, hide_context: bool) -> None:
    try:
        raise target
    except ForbiddenTarget as exc:
        if hide_context:
            raise ValueError("while handling") from None
        raise RuntimeError("send failed") from exc


def test_forbidden_cause_finds_the_error_through_chains_and_groups() -> None:
    target = ForbiddenTarget(RECEIVER, ["127.0.0.1"])
    with pytest.raises(RuntimeError, match="send failed") as chained:
        fail_after(target, hide_context=False)
    assert forbidden_cause(chained.value) is target

    # `from None` hides the context from tracebacks but keeps it on the exception.
    with pytest.raises(ValueError, match="while handling") as hidden:
        fail_after(target, hide_context=True)
    assert forbidden_cause(hidden.value) is target

    group = ExceptionGroup("attempts", [ConnectionResetError(), target])
    assert forbidden_cause(group) is target


def test_forbidden_cause_is_none_for_other_failures() -> None:
    assert forbidden_cause(ConnectionRefusedError()) is None
    assert forbidden_cause(TimeoutError()) is None
    looped = RuntimeError("a")
    other = RuntimeError("b")
    looped.__context__ = other
    other.__context__ = looped
    assert forbidden_cause(looped) is None


def test_the_error_survives_pickling() -> None:
    target = ForbiddenTarget(RECEIVER, ["127.0.0.1", "::1"])
    copy = pickle.loads(pickle.dumps(target))  # noqa: S301 - our own bytes
    assert isinstance(copy, ForbiddenTarget)
    assert (copy.host, copy.addresses, str(copy)) == (target.host, target.addresses, str(target))
