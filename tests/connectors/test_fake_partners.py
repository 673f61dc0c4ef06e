"""The fake DataPass partner answers as the spec says: the connector's tests lean on it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.connectors.fake_partners import ENTRY_BASE, DataPassFake, Fault, datapass_entry

GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
def fake() -> Iterator[DataPassFake]:
    with DataPassFake() as partner:
        partner.entries = [datapass_entry(n) for n in range(1, 6)]
        yield partner


def token_of(fake: DataPassFake) -> str:
    reply = httpx.post(fake.auth_url, data=GRANT, auth=(fake.client_id, fake.client_secret))
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["access_token"]
    return token


def list_page(fake: DataPassFake, token: str | None, **params: str | int) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    query: dict[str, str | int] = {"state": "validated", **params}
    return httpx.get(f"{fake.api_base_url}/authorization_requests", params=query, headers=headers)


def test_token_by_basic_auth(fake: DataPassFake) -> None:
    reply = httpx.post(fake.auth_url, data=GRANT, auth=(fake.client_id, fake.client_secret))
    assert reply.status_code == 200
    body = reply.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert fake.tokens_issued == [body["access_token"]]
    assert list_page(fake, body["access_token"]).status_code == 200


def test_token_by_form_fields(fake: DataPassFake) -> None:
    fake.token_lifetime = 60
    form = {**GRANT, "client_id": fake.client_id, "client_secret": fake.client_secret}
    reply = httpx.post(fake.auth_url, data=form)
    assert reply.status_code == 200
    assert reply.json()["expires_in"] == 60
    assert list_page(fake, reply.json()["access_token"]).status_code == 200


def test_wrong_credentials_grant_or_content_type_are_refused(fake: DataPassFake) -> None:
    basic = httpx.post(fake.auth_url, data=GRANT, auth=(fake.client_id, "wrong"))
    assert (basic.status_code, basic.json()) == (401, {"error": "invalid_client"})
    form = {**GRANT, "client_id": fake.client_id, "client_secret": "wrong"}
    assert httpx.post(fake.auth_url, data=form).status_code == 401
    assert httpx.post(fake.auth_url, data=GRANT).status_code == 401
    other = {"grant_type": "password", "client_id": fake.client_id}
    refused = httpx.post(fake.auth_url, data=other, auth=(fake.client_id, fake.client_secret))
    assert (refused.status_code, refused.json()) == (400, {"error": "unsupported_grant_type"})
    as_json = httpx.post(fake.auth_url, json=GRANT, auth=(fake.client_id, fake.client_secret))
    assert as_json.status_code == 400
    assert fake.tokens_issued == []


def test_list_needs_a_live_token(fake: DataPassFake) -> None:
    assert list_page(fake, None).status_code == 401
    assert list_page(fake, "made-up").status_code == 401
    token = token_of(fake)
    assert list_page(fake, token).status_code == 200
    fake.revoke_tokens()
    revoked = list_page(fake, token)
    assert (revoked.status_code, revoked.json()) == (401, {"error": "invalid_token"})
    assert list_page(fake, token_of(fake)).status_code == 200


def test_pages_end_with_an_empty_array(fake: DataPassFake) -> None:
    fake.entries.insert(2, datapass_entry(99, state="draft"))
    token = token_of(fake)
    seen: list[int] = []
    pages = 0
    offset = 0
    while True:
        page = list_page(fake, token, limit=2, offset=offset).json()
        pages += 1
        if not page:
            break
        assert len(page) <= 2
        seen += [entry["id"] for entry in page]
        offset += len(page)
    assert seen == [1, 2, 3, 4, 5]
    assert pages == 4
    assert list_page(fake, token).json() == fake.entries[:2] + fake.entries[3:]


@pytest.mark.parametrize(
    "params",
    [
        {"state": "draft"},
        {"state": ""},
        {"limit": 0},
        {"limit": 1001},
        {"limit": "ten"},
        {"offset": -1},
        {"offset": "1.5"},
    ],
)
def test_bad_queries_are_400(fake: DataPassFake, params: dict[str, str | int]) -> None:
    assert list_page(fake, token_of(fake), **params).status_code == 400


def test_limit_and_offset_bounds_are_accepted(fake: DataPassFake) -> None:
    token = token_of(fake)
    assert len(list_page(fake, token, limit=1000).json()) == 5
    assert [e["id"] for e in list_page(fake, token, limit=1, offset=4).json()] == [5]
    assert list_page(fake, token, offset=50).json() == []
    missing_state = httpx.get(
        f"{fake.api_base_url}/authorization_requests",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert missing_state.status_code == 400


def test_a_scripted_503_then_success(fake: DataPassFake) -> None:
    token = token_of(fake)
    fake.faults["list"].append(Fault(status=503))
    failed = list_page(fake, token)
    assert (failed.status_code, failed.json()) == (503, {"error": "fault"})
    assert "retry-after" not in failed.headers
    assert len(list_page(fake, token).json()) == 5
    assert [r.status for r in fake.at("list")] == [503, 200]


def test_a_429_fault_carries_retry_after(fake: DataPassFake) -> None:
    fake.faults["token"].append(Fault(status=429, retry_after="1", body='{"error": "slow_down"}'))
    limited = httpx.post(fake.auth_url, data=GRANT, auth=(fake.client_id, fake.client_secret))
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert limited.json() == {"error": "slow_down"}
    assert fake.tokens_issued == []
    assert token_of(fake) == fake.tokens_issued[0]


def test_a_partner_broken_mid_pagination(fake: DataPassFake) -> None:
    fake.fail_from_offset = 2
    token = token_of(fake)
    assert [e["id"] for e in list_page(fake, token, limit=2, offset=0).json()] == [1, 2]
    assert list_page(fake, token, limit=2, offset=2).status_code == 500
    assert list_page(fake, token, limit=2, offset=4).status_code == 500
    fake.fail_from_offset = None
    assert [e["id"] for e in list_page(fake, token, limit=2, offset=2).json()] == [3, 4]


def test_a_delay_fault_times_the_client_out_and_the_server_stays_responsive(
    fake: DataPassFake,
) -> None:
    token = token_of(fake)
    fake.faults["list"].append(Fault(status=200, delay=1.5))
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(
            f"{fake.api_base_url}/authorization_requests",
            params={"state": "validated"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=0.2,
        )
    assert time.monotonic() - started < 1.0
    # The delayed handler is still asleep; another request is answered at once.
    during = time.monotonic()
    assert list_page(fake, token).status_code == 200
    assert time.monotonic() - during < 0.5
    assert fake.at("list")[0].status == 0


def test_requests_are_recorded(fake: DataPassFake) -> None:
    token = token_of(fake)
    list_page(fake, token, limit=3, offset=1)
    list_page(fake, None)
    token_call, listed, anonymous = fake.requests
    assert (token_call.route, token_call.status) == ("token", 200)
    assert token_call.headers["authorization"].startswith("Basic ")
    assert listed.route == "list"
    assert listed.query == {"state": "validated", "limit": "3", "offset": "1"}
    assert listed.headers["authorization"] == f"Bearer {token}"
    assert listed.status == 200
    assert "authorization" not in anonymous.headers
    assert anonymous.status == 401


def test_datapass_entry_shape() -> None:
    entry = datapass_entry(7)
    assert entry["id"] == 7
    assert entry["public_id"] == datapass_entry(7)["public_id"] != datapass_entry(8)["public_id"]
    assert entry["last_validated_at"] == "2026-06-01T09:07:00.000Z"
    assert entry["created_at"] < entry["last_submitted_at"] < entry["last_validated_at"]
    assert entry["organisation"]["siret"].isdigit()
    assert len(entry["organisation"]["siret"]) == 14
    assert set(entry) == {
        "id",
        "public_id",
        "type",
        "state",
        "form_uid",
        "data",
        "created_at",
        "last_submitted_at",
        "last_validated_at",
        "habilitations",
        "organisation",
    }
    at = datetime(2026, 7, 1, 8, 30, tzinfo=UTC)
    chosen = datapass_entry(1, validated_at=at, public_id="p-1", type_="api_x")
    assert (chosen["last_validated_at"], chosen["public_id"], chosen["type"]) == (
        "2026-07-01T08:30:00.000Z",
        "p-1",
        "api_x",
    )
    unvalidated = datapass_entry(2, validated_at=None)
    assert "last_validated_at" in unvalidated
    assert unvalidated["last_validated_at"] is None
    assert unvalidated["created_at"] < ENTRY_BASE.isoformat()
    with pytest.raises(ValueError, match="aware"):
        datapass_entry(3, validated_at=datetime(2026, 1, 1))
