"""What runs leave for the API: a connector's last run and watermark, its runs and
rejects, and `GET /v1/authorizations`, each per tenant, paginated, refusing bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from coursegate.connectors.runner import Runner
from coursegate.db import Database
from coursegate.enrollments.adapters import Adapters
from coursegate.kit.clock import FrozenClock
from tests.conftest import bearer, create_tenant
from tests.connectors.conftest import Sleeps, add_datapass_connector, partner_stores
from tests.connectors.fake_partners import DataPassFake, Fault, datapass_entry


@pytest.fixture
async def keys(database: Database, clock: FrozenClock, fake: DataPassFake) -> dict[str, str]:
    made = {slug: await create_tenant(database, clock, slug) for slug in ("acme", "globex")}
    await add_datapass_connector(database, clock, fake)
    return made


async def pull(database: Database, clock: FrozenClock, fake: DataPassFake) -> Any:
    runner = Runner(
        database, clock, partner_stores(fake), Adapters.inert(), allow_private=True, sleep=Sleeps()
    )
    return await runner.run("acme", "cnous", trigger="manual")


async def get(client: httpx.AsyncClient, key: str, path: str, **params: str) -> Any:
    response = await client.get(path, headers=bearer(key), params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_runs_rejects_and_authorizations_are_listed(
    client: httpx.AsyncClient,
    database: Database,
    clock: FrozenClock,
    fake: DataPassFake,
    keys: dict[str, str],
) -> None:
    acme = keys["acme"]
    fake.entries = [datapass_entry(n) for n in range(1, 4)]
    first = await pull(database, clock, fake)
    fake.entries += [datapass_entry(4, validated_at=None), datapass_entry(5)]
    fake.faults["list"].append(Fault(403))
    failed = await pull(database, clock, fake)
    second = await pull(database, clock, fake)

    connector = await get(client, acme, "/v1/connectors/cnous")
    assert connector["watermark"] == "2026-06-01T09:05:00.000Z"
    assert connector["last_run"]["id"] == str(second.run_id)
    assert connector["last_run"]["status"] == "succeeded"
    listed = await get(client, acme, "/v1/connectors")
    assert listed["data"][0]["last_run"] == connector["last_run"]

    page = await get(client, acme, "/v1/connectors/cnous/runs", limit="2")
    assert [r["id"] for r in page["data"]] == [str(second.run_id), str(failed.run_id)]
    assert page["data"][1]["error_class"] == "http_4xx"
    assert page["data"][1]["message"] == "the partner API answered HTTP 403"
    rest = await get(
        client, acme, "/v1/connectors/cnous/runs", limit="2", cursor=page["next_cursor"]
    )
    assert [r["id"] for r in rest["data"]] == [str(first.run_id)]
    assert rest["next_cursor"] is None
    assert (rest["data"][0]["created"], rest["data"][0]["pages"]) == (3, 1)

    rejects = await get(client, acme, "/v1/connectors/cnous/rejects")
    [reject] = rejects["data"]
    assert reject["reason"] == "last_validated_at is missing on an incremental run"
    assert reject["raw"] == fake.entries[3]
    assert reject["run_id"] == str(second.run_id)
    assert (await get(client, acme, "/v1/connectors/cnous/rejects", open="true"))["data"]

    authorizations = await get(client, acme, "/v1/authorizations", limit="3")
    assert [a["external_id"] for a in authorizations["data"]] == [
        e["public_id"] for e in fake.entries[:3]
    ]
    assert authorizations["data"][0]["validated_at"] == "2026-06-01T09:01:00.000Z"
    assert authorizations["data"][0]["organisation"] == fake.entries[0]["organisation"]
    more = await get(client, acme, "/v1/authorizations", cursor=authorizations["next_cursor"])
    assert [a["external_id"] for a in more["data"]] == [fake.entries[4]["public_id"]]
    assert (await get(client, acme, "/v1/authorizations", type="other"))["data"] == []
    assert len((await get(client, acme, "/v1/authorizations", connector="cnous"))["data"]) == 4

    # Another tenant sees none of it.
    assert (await get(client, keys["globex"], "/v1/authorizations"))["data"] == []
    assert (await get(client, keys["globex"], "/v1/connectors"))["data"] == []


@pytest.mark.parametrize(
    "path",
    ["/v1/connectors/cnous/runs", "/v1/connectors/cnous/rejects", "/v1/authorizations"],
)
@pytest.mark.parametrize(
    "params",
    [{"cursor": "not-a-cursor"}, {"limit": "0"}, {"limit": "abc"}, {"limit": "100000"}],
)
async def test_bad_paging_is_refused(
    client: httpx.AsyncClient, keys: dict[str, str], path: str, params: dict[str, str]
) -> None:
    response = await client.get(path, headers=bearer(keys["acme"]), params=params)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "VALIDATION_ERROR"


async def test_filters_that_are_too_long_are_refused(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    response = await client.get(
        "/v1/authorizations", headers=bearer(keys["acme"]), params={"connector": "x" * 64}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "VALIDATION_ERROR"


async def test_deleting_a_connector_takes_its_runs_and_rejects_but_not_its_authorizations(
    client: httpx.AsyncClient,
    database: Database,
    clock: FrozenClock,
    fake: DataPassFake,
    keys: dict[str, str],
) -> None:
    acme = keys["acme"]
    fake.entries = [datapass_entry(1), {**datapass_entry(2), "public_id": None}]
    await pull(database, clock, fake)
    response = await client.delete("/v1/connectors/cnous", headers=bearer(acme))
    assert response.status_code == 204
    assert len((await get(client, acme, "/v1/authorizations"))["data"]) == 1
    missing = await client.get("/v1/connectors/cnous/runs", headers=bearer(acme))
    assert missing.status_code == 404
