"""The fake partners answer as their specs say: the connectors' tests lean on them."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.connectors.fake_partners import (
    ENTRY_BASE,
    ONEROSTER_DESCRIPTION,
    ROSTER_BASE,
    DataPassFake,
    Fault,
    OneRosterFake,
    Route,
    datapass_entry,
    oneroster_class,
    oneroster_enrollment,
    oneroster_user,
    oneroster_violations,
)

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


# -- OneRoster -------------------------------------------------------------------------------

COLLECTIONS: tuple[Route, ...] = ("users", "classes", "enrollments")


@pytest.fixture
def roster() -> Iterator[OneRosterFake]:
    with OneRosterFake() as partner:
        partner.users = [oneroster_user(n) for n in range(1, 6)]
        partner.classes = [oneroster_class("math-1"), oneroster_class("bio-2")]
        partner.enrollments = [
            oneroster_enrollment(n, user=f"user-{n}", class_id="math-1") for n in range(1, 4)
        ]
        yield partner


def roster_token(roster: OneRosterFake) -> str:
    reply = httpx.post(roster.token_url, data=GRANT, auth=(roster.client_id, roster.client_secret))
    assert reply.status_code == 200, reply.text
    token: str = reply.json()["access_token"]
    return token


def roster_page(
    roster: OneRosterFake, collection: str, token: str | None, **params: str | int
) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{roster.api_base_url}/{collection}", params=params, headers=headers)


def ids(reply: httpx.Response, collection: str) -> list[str]:
    assert reply.status_code == 200, reply.text
    return [record["sourcedId"] for record in reply.json()[collection]]


def code_minor(reply: httpx.Response) -> str:
    body = reply.json()
    assert (body["imsx_codeMajor"], body["imsx_severity"]) == ("failure", "error")
    assert body["imsx_description"]
    (field,) = body["imsx_CodeMinor"]["imsx_codeMinorField"]
    assert field["imsx_codeMinorFieldName"] == "TargetEndSystem"
    value: str = field["imsx_codeMinorFieldValue"]
    return value


def test_oneroster_urls_follow_the_rostering_binding(roster: OneRosterFake) -> None:
    assert roster.token_url == f"{roster.base_url}/oauth/token"
    assert roster.api_base_url == f"{roster.base_url}/ims/oneroster/rostering/v1p2"


def test_oneroster_token_then_each_collection(roster: OneRosterFake) -> None:
    form = {**GRANT, "client_id": roster.client_id, "client_secret": roster.client_secret}
    issued = httpx.post(roster.token_url, data=form)
    assert issued.status_code == 200
    token = issued.json()["access_token"]
    assert roster.tokens_issued == [token]
    users = roster_page(roster, "users", token)
    assert users.json() == {"users": roster.users}
    assert users.headers["x-total-count"] == "5"
    assert ids(roster_page(roster, "classes", token), "classes") == ["math-1", "bio-2"]
    assert ids(roster_page(roster, "enrollments", token), "enrollments") == [
        "enr-1",
        "enr-2",
        "enr-3",
    ]
    assert [r.route for r in roster.requests] == ["token", *COLLECTIONS]
    assert [r.status for r in roster.requests] == [200, 200, 200, 200]
    assert roster.at("users")[0].headers["authorization"] == f"Bearer {token}"


def test_oneroster_records_are_read_on_every_request(roster: OneRosterFake) -> None:
    token = roster_token(roster)
    roster.users = [oneroster_user(9)]
    assert ids(roster_page(roster, "users", token), "users") == ["user-9"]
    roster.users.append(oneroster_user(10))
    assert ids(roster_page(roster, "users", token), "users") == ["user-9", "user-10"]
    roster.enrollments = []
    empty = roster_page(roster, "enrollments", token)
    assert empty.json() == {"enrollments": []}
    assert empty.headers["x-total-count"] == "0"
    assert set(empty.links) == {"last"}


def test_oneroster_pages_by_limit_and_offset_with_total_and_links(roster: OneRosterFake) -> None:
    token = roster_token(roster)
    first = roster_page(roster, "users", token, limit=2)
    assert ids(first, "users") == ["user-1", "user-2"]
    assert first.headers["x-total-count"] == "5"
    base = f"{roster.api_base_url}/users"
    assert first.links["next"]["url"] == f"{base}?limit=2&offset=2"
    assert first.links["last"]["url"] == f"{base}?limit=2&offset=4"
    seen: list[str] = []
    url: str | None = first.links["next"]["url"]
    seen += ids(first, "users")
    while url is not None:
        page = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        seen += ids(page, "users")
        assert page.headers["x-total-count"] == "5"
        url = page.links.get("next", {}).get("url")
    assert seen == [f"user-{n}" for n in range(1, 6)]
    assert [r.query for r in roster.at("users")][1:] == [
        {"limit": "2", "offset": "2"},
        {"limit": "2", "offset": "4"},
    ]
    assert ids(roster_page(roster, "users", token, limit=3, offset=1), "users") == [
        "user-2",
        "user-3",
        "user-4",
    ]
    assert ids(roster_page(roster, "users", token, limit=1000), "users") == seen
    beyond = roster_page(roster, "users", token, offset=50)
    assert (beyond.json(), beyond.headers["x-total-count"]) == ({"users": []}, "5")
    assert "next" not in beyond.links
    assert beyond.links["last"]["url"] == f"{base}?limit=100&offset=0"


def test_oneroster_links_keep_the_filter(roster: OneRosterFake) -> None:
    token = roster_token(roster)
    since = "dateLastModified>='2026-08-01T07:02:00Z'"
    page = roster_page(roster, "users", token, limit=2, filter=since)
    assert ids(page, "users") == ["user-2", "user-3"]
    assert page.headers["x-total-count"] == "4"
    following = httpx.get(page.links["next"]["url"], headers={"Authorization": f"Bearer {token}"})
    assert ids(following, "users") == ["user-4", "user-5"]
    assert "next" not in following.links
    assert roster.at("users")[-1].query == {"limit": "2", "offset": "2", "filter": since}
    last = httpx.get(page.links["last"]["url"], headers={"Authorization": f"Bearer {token}"})
    assert ids(last, "users") == ["user-4", "user-5"]


INSTANTS = (
    "2026-08-01T07:03:00Z",
    "2026-08-01T07:03:00.000Z",
    "2026-08-01T09:03:00+02:00",
    "2026-08-01T02:03:00.000000-05:00",
)
"""One instant, user-3's modification, written with the precisions and offsets RFC 3339 allows."""


@pytest.mark.parametrize(
    ("op", "expected"),
    [(">", [4, 5]), (">=", [3, 4, 5]), ("<", [1, 2]), ("<=", [1, 2, 3]), ("=", [3])],
)
def test_oneroster_filters_compare_instants(
    roster: OneRosterFake, op: str, expected: list[int]
) -> None:
    roster.classes = [
        oneroster_class(f"class-{n}", modified=ROSTER_BASE + timedelta(minutes=n))
        for n in range(1, 6)
    ]
    roster.enrollments = [
        oneroster_enrollment(n, user=f"user-{n}", class_id="class-1") for n in range(1, 6)
    ]
    token = roster_token(roster)
    for collection, prefix in zip(COLLECTIONS, ("user", "class", "enr"), strict=True):
        for instant in INSTANTS:
            filter_ = f"dateLastModified{op}'{instant}'"
            reply = roster_page(roster, collection, token, filter=filter_)
            assert ids(reply, collection) == [f"{prefix}-{n}" for n in expected], filter_
            assert reply.headers["x-total-count"] == str(len(expected))


def test_oneroster_filter_skips_records_without_a_readable_instant(roster: OneRosterFake) -> None:
    unreadable: list[dict[str, Any]] = [
        {**oneroster_user(6), "dateLastModified": "yesterday"},
        {**oneroster_user(7), "dateLastModified": "2026-08-01T08:00:00"},
        {k: v for k, v in oneroster_user(8).items() if k != "dateLastModified"},
        {**oneroster_user(9), "dateLastModified": None},
    ]
    roster.users = [oneroster_user(1), *unreadable, oneroster_user(10)]
    token = roster_token(roster)
    reply = roster_page(roster, "users", token, filter="dateLastModified>'2000-01-01T00:00:00Z'")
    assert ids(reply, "users") == ["user-1", "user-10"]
    assert reply.headers["x-total-count"] == "2"
    assert len(ids(roster_page(roster, "users", token), "users")) == 6


BAD_FILTERS = (
    "",
    "status='active'",
    "dateLastModified!='2026-08-01T07:03:00Z'",
    "dateLastModified~'2026-08-01T07:03:00Z'",
    "dateLastModified>'2026-08-01'",
    "dateLastModified>'2026-08-01T07:03:00'",
    "dateLastModified>'2026-08-01 07:03:00Z'",
    "dateLastModified>'2026-13-01T07:03:00Z'",
    "dateLastModified>2026-08-01T07:03:00Z",
    "dateLastModified > '2026-08-01T07:03:00Z'",
    "dateLastModified>'2026-08-01T07:03:00Z' AND status='active'",
    "datelastmodified>'2026-08-01T07:03:00Z'",
)


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_oneroster_bad_filters_are_400(roster: OneRosterFake, collection: Route) -> None:
    token = roster_token(roster)
    for filter_ in BAD_FILTERS:
        reply = roster_page(roster, collection, token, filter=filter_)
        assert reply.status_code == 400, filter_
        assert code_minor(reply) == "invalid_filter_field"
    assert {r.status for r in roster.at(collection)} == {400}


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_oneroster_bad_limit_or_offset_is_400(roster: OneRosterFake, collection: Route) -> None:
    token = roster_token(roster)
    bad: list[dict[str, str | int]] = [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "ten"},
        {"limit": ""},
        {"offset": -1},
        {"offset": "1.5"},
        {"offset": ""},
    ]
    for params in bad:
        reply = roster_page(roster, collection, token, **params)
        assert reply.status_code == 400, params
        assert code_minor(reply) == "invaliddata"


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_oneroster_needs_a_live_token(roster: OneRosterFake, collection: Route) -> None:
    for token in (None, "made-up"):
        refused = roster_page(roster, collection, token)
        assert refused.status_code == 401
        assert code_minor(refused) == "unauthorisedrequest"
        assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    token = roster_token(roster)
    assert roster_page(roster, collection, token).status_code == 200
    roster.revoke_tokens()
    revoked = roster_page(roster, collection, token)
    assert (revoked.status_code, code_minor(revoked)) == (401, "unauthorisedrequest")
    assert roster_page(roster, collection, roster_token(roster)).status_code == 200
    assert [r.status for r in roster.at(collection)] == [401, 401, 200, 401, 200]


def test_oneroster_token_refuses_wrong_credentials(roster: OneRosterFake) -> None:
    wrong = httpx.post(roster.token_url, data=GRANT, auth=(roster.client_id, "wrong"))
    assert (wrong.status_code, wrong.json()) == (401, {"error": "invalid_client"})
    assert wrong.headers["www-authenticate"] == 'Basic realm="oneroster"'
    assert roster.tokens_issued == []


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_oneroster_a_scripted_fault_per_collection(
    roster: OneRosterFake, collection: Route
) -> None:
    token = roster_token(roster)
    roster.faults[collection].append(Fault(status=429, retry_after="2"))
    limited = roster_page(roster, collection, token)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "2")
    for other in COLLECTIONS:
        assert roster_page(roster, other, token).status_code == 200
    assert [r.status for r in roster.at(collection)] == [429, 200]


def test_oneroster_a_scripted_token_fault(roster: OneRosterFake) -> None:
    roster.faults["token"].append(Fault(status=503))
    failed = httpx.post(roster.token_url, data=GRANT, auth=(roster.client_id, roster.client_secret))
    assert failed.status_code == 503
    assert roster.tokens_issued == []
    assert roster_token(roster) == roster.tokens_issued[0]


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_oneroster_a_collection_broken_mid_pagination(
    roster: OneRosterFake, collection: Route
) -> None:
    roster.fail_from_offset[collection] = 1
    token = roster_token(roster)
    assert roster_page(roster, collection, token, limit=1).status_code == 200
    for offset in (1, 2, 40):
        broken = roster_page(roster, collection, token, limit=1, offset=offset)
        assert (broken.status_code, code_minor(broken)) == (500, "internal_server_error")
    for other in COLLECTIONS:
        if other != collection:
            assert roster_page(roster, other, token, offset=1).status_code == 200
    del roster.fail_from_offset[collection]
    assert roster_page(roster, collection, token, limit=1, offset=1).status_code == 200


def test_oneroster_user_shape() -> None:
    user = oneroster_user(7)
    assert user == oneroster_user(7) != oneroster_user(8)
    assert (user["sourcedId"], user["status"], user["email"]) == (
        "user-7",
        "active",
        "learner7@school.example",
    )
    assert user["dateLastModified"] == "2026-08-01T07:07:00.000Z"
    assert user["enabledUser"] == "true"
    assert user["grades"] == ["09"]
    assert user["agents"] == []
    (user_id,) = user["userIds"]
    assert user_id["type"] == "LDAP"
    assert user_id["identifier"]
    (role,) = user["roles"]
    assert (role["roleType"], role["role"]) == ("primary", "student")
    assert (role["org"]["sourcedId"], role["org"]["type"]) == ("school-1", "org")
    assert role["org"]["href"].endswith("/orgs/school-1")
    assert set(user) == {
        "sourcedId",
        "status",
        "dateLastModified",
        "userMasterIdentifier",
        "username",
        "userIds",
        "enabledUser",
        "givenName",
        "familyName",
        "middleName",
        "roles",
        "agents",
        "email",
        "grades",
    }
    at = datetime(2026, 9, 1, 10, 30, 0, 250000, tzinfo=UTC)
    chosen = oneroster_user(
        1, role="teacher", status="tobedeleted", modified=at, email="t@x.example"
    )
    assert (chosen["roles"][0]["role"], chosen["status"], chosen["email"]) == (
        "teacher",
        "tobedeleted",
        "t@x.example",
    )
    assert chosen["dateLastModified"] == "2026-09-01T10:30:00.250Z"
    assert "email" not in oneroster_user(2, email=None)
    with pytest.raises(ValueError, match="aware"):
        oneroster_user(3, modified=datetime(2026, 1, 1))


def test_oneroster_class_shape() -> None:
    klass = oneroster_class("math-1")
    assert klass == oneroster_class("math-1")
    assert (klass["sourcedId"], klass["status"], klass["classType"]) == (
        "math-1",
        "active",
        "scheduled",
    )
    assert klass["dateLastModified"] == "2026-08-01T07:00:00.000Z"
    assert klass["title"]
    assert (klass["course"]["type"], klass["school"]["type"]) == ("course", "org")
    assert klass["school"]["sourcedId"] == "school-1"
    assert [term["type"] for term in klass["terms"]] == ["academicSession"]
    assert set(klass) == {
        "sourcedId",
        "status",
        "dateLastModified",
        "title",
        "classCode",
        "classType",
        "location",
        "grades",
        "subjects",
        "course",
        "school",
        "terms",
        "periods",
    }
    at = datetime(2026, 8, 2, tzinfo=UTC)
    chosen = oneroster_class("bio-2", status="tobedeleted", modified=at, title="Biology")
    assert (chosen["status"], chosen["dateLastModified"], chosen["title"]) == (
        "tobedeleted",
        "2026-08-02T00:00:00.000Z",
        "Biology",
    )


def test_oneroster_enrollment_shape() -> None:
    enrollment = oneroster_enrollment(4, user="user-4", class_id="math-1")
    assert enrollment == oneroster_enrollment(4, user="user-4", class_id="math-1")
    assert enrollment["sourcedId"] == "enr-4"
    assert enrollment["dateLastModified"] == "2026-08-01T07:04:00.000Z"
    assert (enrollment["user"]["sourcedId"], enrollment["user"]["type"]) == ("user-4", "user")
    assert (enrollment["class"]["sourcedId"], enrollment["class"]["type"]) == ("math-1", "class")
    assert enrollment["school"]["sourcedId"] == "school-1"
    assert (enrollment["role"], enrollment["primary"], enrollment["status"]) == (
        "student",
        "false",
        "active",
    )
    assert (enrollment["beginDate"], enrollment["endDate"]) == ("2026-09-01", "2027-06-30")
    assert all(enrollment[ref]["href"] for ref in ("user", "class", "school"))
    chosen = oneroster_enrollment(
        5,
        user="user-9",
        class_id="bio-2",
        role="teacher",
        status="tobedeleted",
        modified=ROSTER_BASE - timedelta(days=1),
    )
    assert (chosen["role"], chosen["status"], chosen["dateLastModified"]) == (
        "teacher",
        "tobedeleted",
        "2026-07-31T07:00:00.000Z",
    )


def test_the_oneroster_description_is_1edtechs_unmodified() -> None:
    digest = hashlib.sha256(ONEROSTER_DESCRIPTION.read_bytes()).hexdigest()
    assert digest == "c473f6ba3a70f0e40b89d56c1b4c16c1f67f7363b4e4dc8601e8b732fb6807f4"


def test_the_schema_check_catches_what_the_description_forbids() -> None:
    """The check that keeps the fake honest is itself honest."""
    good = oneroster_user(1, email="")
    assert oneroster_violations("users", {"users": [good]}) == []
    missing = {k: v for k, v in oneroster_user(2).items() if k != "givenName"}
    problems = oneroster_violations(
        "users", {"users": [missing, {**oneroster_user(3), "status": "inactive"}]}
    )
    assert problems == [
        "users: users/0: 'givenName' is a required property",
        "users: users/1/status: 'inactive' is not one of ['active', 'tobedeleted']",
    ]
    assert oneroster_violations("classes", {"classes": [oneroster_class("c")]}) == []
    enrollment = oneroster_enrollment(1, user="u", class_id="c")
    assert oneroster_violations("enrollments", {"enrollments": [enrollment]}) == []
    assert oneroster_violations("enrollments", {"enrollments": [], "extra": 1}) != []
