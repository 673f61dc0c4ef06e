"""Signature cases over HTTP, for both schemes (SPEC §2)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.completions.conftest import PATH, Setup, standard_headers


def _raw_header(setup: Setup, body: bytes, params: str) -> dict[str, str]:
    return {"Authorization": f"HMAC-SHA256 {params}", "Content-Type": "application/json"}


def _sig(secret: str, ts: int, body: bytes, path: str = PATH, method: str = "POST") -> str:
    to_sign = f"{method}\n{path}\n{ts}\n{hashlib.sha256(body).hexdigest()}".encode()
    return base64.b64encode(hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()).decode()


async def _post(
    setup: Setup, body: bytes, headers: dict[str, str], path: str = PATH
) -> httpx.Response:
    return await setup.client.post(path, content=body, headers=headers)


async def test_parameters_in_any_order_with_or_without_spaces(inbound: Setup) -> None:
    ts = int(inbound.clock.now().timestamp())
    for i, template in enumerate(
        [
            "KeyId=k1, Signature={s}, Timestamp={t}",
            "Timestamp={t},KeyId=k1,Signature={s}",
            "Signature={s}, Timestamp={t},KeyId=k1",
        ]
    ):
        body = json.dumps(inbound.payload(course_id=f"c{i}")).encode()
        params = template.format(s=_sig(inbound.secret, ts, body), t=ts)
        response = await _post(inbound, body, _raw_header(inbound, body, params))
        assert response.status_code == 201, (template, response.text)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ("KeyId=k1, Signature={s}", "missing_parameter"),
        ("KeyId=k1, Timestamp={t}", "missing_parameter"),
        ("KeyId=k1, Signature={s}, Timestamp={t}, Nonce=1", "unknown_parameter"),
        ("KeyId=k1, KeyId=k1, Signature={s}, Timestamp={t}", "repeated_parameter"),
        ("KeyId=k9, Signature={s}, Timestamp={t}", "unknown_key"),
    ],
)
async def test_malformed_headers_are_401(inbound: Setup, params: str, reason: str) -> None:
    body = json.dumps(inbound.payload()).encode()
    ts = int(inbound.clock.now().timestamp())
    headers = _raw_header(inbound, body, params.format(s=_sig(inbound.secret, ts, body), t=ts))
    response = await _post(inbound, body, headers)
    assert response.status_code == 401
    assert response.json() == {"error": "UNAUTHORIZED"}
    assert (await inbound.audit())[0]["reason"] == reason


async def test_no_authorization_header_is_401(inbound: Setup) -> None:
    response = await inbound.client.post(PATH, json=inbound.payload())
    assert response.status_code == 401


@pytest.mark.parametrize("skew", [301, -301])
async def test_skew_of_301_seconds_either_way_is_401(inbound: Setup, skew: int) -> None:
    at = inbound.clock.now() + timedelta(seconds=skew)
    response = await inbound.send(inbound.payload(), at=at)
    assert response.status_code == 401
    assert (await inbound.audit())[0]["reason"] == "timestamp_skew"


@pytest.mark.parametrize("skew", [300, -300])
async def test_skew_of_300_seconds_is_accepted(inbound: Setup, skew: int) -> None:
    response = await inbound.send(
        inbound.payload(), at=inbound.clock.now() + timedelta(seconds=skew)
    )
    assert response.status_code == 201


async def test_tampered_body_is_401(inbound: Setup) -> None:
    body = json.dumps(inbound.payload(content_hours=1)).encode()
    headers = inbound.signed(body)
    tampered = body.replace(b'"content_hours": 1', b'"content_hours": 100')
    assert tampered != body
    response = await _post(inbound, tampered, headers)
    assert response.status_code == 401
    assert (await inbound.audit())[0]["reason"] == "signature_mismatch"


async def test_signed_for_another_path_is_401(inbound: Setup) -> None:
    body = json.dumps(inbound.payload()).encode()
    headers = inbound.signed(body, path="/v1/inbound/acme/other/completions")
    assert (await _post(inbound, body, headers)).status_code == 401
    # The query string is part of the signed path.
    with_query = inbound.signed(body, path=PATH + "?x=1")
    assert (await _post(inbound, body, with_query)).status_code == 401
    assert (await _post(inbound, body, with_query, path=PATH + "?x=1")).status_code == 201


async def test_a_rotated_out_key_stops_verifying(inbound: Setup) -> None:
    added = await inbound.client.post(
        "/v1/providers/edovo/keys", json={"key_id": "k2"}, headers=inbound.admin
    )
    assert added.status_code == 201
    k2 = added.json()["secret"]
    # Both keys verify during the rotation.
    assert (await inbound.send(inbound.payload(course_id="a"))).status_code == 201
    assert (
        await inbound.send(inbound.payload(course_id="b"), key_id="k2", secret=k2)
    ).status_code == 201
    retired = await inbound.client.delete("/v1/providers/edovo/keys/k1", headers=inbound.admin)
    assert retired.status_code == 200
    old = await inbound.send(inbound.payload(course_id="c"))
    assert old.status_code == 401
    assert (await inbound.audit())[0]["reason"] == "unknown_key"
    assert (
        await inbound.send(inbound.payload(course_id="c"), key_id="k2", secret=k2)
    ).status_code == 201


async def test_a_secret_from_the_environment(
    inbound: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDOVO_K3", "a-referenced-secret")
    added = await inbound.client.post(
        "/v1/providers/edovo/keys",
        json={"key_id": "k3", "secret_ref": "env:EDOVO_K3"},
        headers=inbound.admin,
    )
    assert added.status_code == 201
    assert "secret" not in added.json() or added.json()["secret"] is None
    ok = await inbound.send(inbound.payload(), key_id="k3", secret="a-referenced-secret")
    assert ok.status_code == 201


class TestStandardWebhooks:
    @pytest.fixture
    async def std(self, inbound: Setup) -> tuple[Setup, str]:
        created = await inbound.client.post(
            "/v1/providers",
            headers=inbound.admin,
            json={
                "id": "mooc",
                "program_id": "co-earned-time",
                "scheme": "standard-webhooks",
                "keys": [{"key_id": "w1"}],
            },
        )
        assert created.status_code == 201, created.text
        secret: str = created.json()["keys"][0]["secret"]
        assert secret.startswith("whsec_")
        return inbound, secret

    async def test_signed_by_the_reference_library_is_accepted(
        self, std: tuple[Setup, str]
    ) -> None:
        setup, secret = std
        body = json.dumps(setup.payload()).encode()
        path = "/v1/inbound/acme/mooc/completions"
        msg_id = "msg_2b3c"
        signature = Webhook(secret).sign(msg_id, setup.clock.now(), body.decode())
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(setup.clock.now().timestamp())),
            "webhook-signature": signature,
            "content-type": "application/json",
        }
        first = await setup.client.post(path, content=body, headers=headers)
        assert first.status_code == 201, first.text
        # The webhook-id is the idempotency key: the same id with other content is refused.
        other = json.dumps(setup.payload(course_id="other")).encode()
        headers["webhook-signature"] = Webhook(secret).sign(
            msg_id, setup.clock.now(), other.decode()
        )
        reused = await setup.client.post(path, content=other, headers=headers)
        assert reused.status_code == 422
        assert reused.json()["error"] == "IDEMPOTENCY_KEY_REUSED"

    async def test_failures_are_401(self, std: tuple[Setup, str]) -> None:
        setup, secret = std
        path = "/v1/inbound/acme/mooc/completions"
        body = json.dumps(setup.payload()).encode()
        now = setup.clock.now()
        cases = {
            "wrong secret": standard_headers(
                "whsec_" + base64.b64encode(b"x" * 32).decode(), body, now
            ),
            "skew": standard_headers(secret, body, now - timedelta(seconds=301)),
            "missing id": {
                k: v for k, v in standard_headers(secret, body, now).items() if k != "webhook-id"
            },
        }
        for name, headers in cases.items():
            response = await setup.client.post(path, content=body, headers=headers)
            assert response.status_code == 401, name
            assert response.json() == {"error": "UNAUTHORIZED"}
        tampered = await setup.client.post(
            path, content=body + b" ", headers=standard_headers(secret, body, now)
        )
        assert tampered.status_code == 401
